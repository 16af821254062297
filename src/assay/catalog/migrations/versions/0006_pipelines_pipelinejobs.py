"""Pipelines registry, managed pipeline jobs' side table and webhook deliveries.

Revision ID: 0006
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipelines",
        sa.Column("uuid", sa.String(36), primary_key=True),
        sa.Column("pipeline_id", sa.String(256), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
        sa.UniqueConstraint("pipeline_id", name="uq_pipelines_pipeline_id"),
    )
    op.create_table(
        "pipelinejobs",
        sa.Column("job_id", sa.String(36), primary_key=True),
        sa.Column("pipeline_uuid", sa.String(36), nullable=False),
        sa.Column("archive_path", sa.String(1024), nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.UniqueConstraint("archive_path", name="uq_pipelinejobs_archive_path"),
    )
    op.create_index("ix_pipelinejobs_pipeline", "pipelinejobs", ["pipeline_uuid"])
    op.create_table(
        "pipelinejob_deliveries",
        sa.Column("job_id", sa.String(36), primary_key=True),
        sa.Column("event_id", sa.String(128), primary_key=True),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("seq", sa.Integer, nullable=True),
        sa.Column("at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pipelinejob_deliveries")
    op.drop_index("ix_pipelinejobs_pipeline", table_name="pipelinejobs")
    op.drop_table("pipelinejobs")
    op.drop_table("pipelines")
