"""API servers' heartbeats, and the server running each claimed Idempotency-Key."""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_servers",
        sa.Column("instance", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("seen_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("instance"),
    )
    with op.batch_alter_table("api_servers") as batch:
        batch.create_index("ix_api_servers_seen_at", ["seen_at"])
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(
            sa.Column("owner", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("owner")
    with op.batch_alter_table("api_servers") as batch:
        batch.drop_index("ix_api_servers_seen_at")
    op.drop_table("api_servers")
