"""Docker hosts: whether a drain preempts the host's cargos or waits for them."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("docker_hosts") as batch:
        batch.add_column(
            sa.Column("preempt", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("docker_hosts") as batch:
        batch.drop_column("preempt")
