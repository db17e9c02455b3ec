"""Docker mode: conditions are stored, so their lastTransitionTime is when they changed."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("docker_miniclusters", "docker_cargos"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("conditions", sa.Text(), nullable=False, server_default="[]")
            )


def downgrade() -> None:
    for table in ("docker_miniclusters", "docker_cargos"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("conditions")
