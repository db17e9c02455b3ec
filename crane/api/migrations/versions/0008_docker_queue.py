"""Docker mode: a queued MiniCluster's waitsBehind and estimatedStart, as in Kubernetes mode."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("docker_miniclusters") as batch:
        batch.add_column(sa.Column("waits_behind", sa.Text(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("estimated_start", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("docker_miniclusters") as batch:
        batch.drop_column("estimated_start")
        batch.drop_column("waits_behind")
