"""Pipelines: an index to find a task's output by processing name.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_bundles_context_processing",
        "bundles",
        ["context_id", "processing_name", "created"],
    )


def downgrade() -> None:
    op.drop_index("ix_bundles_context_processing", table_name="bundles")
