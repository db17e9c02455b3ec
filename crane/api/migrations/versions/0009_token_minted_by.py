"""Tokens: the token that minted each one, so revoking a tenant token revokes what it minted."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("minted_by", sa.String(length=32), nullable=True))
        batch.create_index("ix_tokens_minted_by", ["minted_by"])


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_index("ix_tokens_minted_by")
        batch.drop_column("minted_by")
