"""Docker mode: hosts, MiniClusters, cargos (with their placements)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "docker_hosts",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("draining", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "docker_miniclusters",
        sa.Column("uid", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(63), nullable=False, index=True),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("labels", sa.Text(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("deleting", sa.Boolean(), nullable=False),
        sa.Column("reservation", sa.Text(), nullable=False),
        sa.Column("admitted", sa.Boolean(), nullable=False),
        sa.Column("queue_position", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.UniqueConstraint("tenant", "name", name="uq_docker_mc_tenant_name"),
    )
    op.create_table(
        "docker_cargos",
        sa.Column("uid", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(63), nullable=False, index=True),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("minicluster", sa.String(63), nullable=False, index=True),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("placement", sa.Text(), nullable=False),
        sa.Column("restarts", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("placed_at", sa.DateTime(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("deleting", sa.Boolean(), nullable=False),
        sa.Column("grace_seconds", sa.Integer(), nullable=False),
        sa.UniqueConstraint("tenant", "name", name="uq_docker_cargo_tenant_name"),
    )


def downgrade() -> None:
    op.drop_table("docker_cargos")
    op.drop_table("docker_miniclusters")
    op.drop_table("docker_hosts")
