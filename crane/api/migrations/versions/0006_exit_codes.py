"""Exit codes: a Docker cargo's, and how each usage interval ended (``crane usage --cargos``)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("docker_cargos") as batch:
        batch.add_column(sa.Column("exit_code", sa.Integer(), nullable=True))
    with op.batch_alter_table("usage_intervals") as batch:
        batch.add_column(sa.Column("state", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("exit_code", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("usage_intervals") as batch:
        batch.drop_column("exit_code")
        batch.drop_column("state")
    with op.batch_alter_table("docker_cargos") as batch:
        batch.drop_column("exit_code")
