"""Compute-to-data access policies: one row per bundle name in a context.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dataset_policies",
        sa.Column(
            "context_id",
            sa.Integer,
            sa.ForeignKey("contexts.id", ondelete="CASCADE", name="fk_dataset_policies_context"),
            primary_key=True,
        ),
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("access", sa.String(16), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("allow_raw_algorithm", sa.Boolean, nullable=False),
        sa.Column("allow_network", sa.Boolean, nullable=False),
        sa.Column("trusted_algorithms", sa.Text, nullable=False),
        sa.Column("trusted_publishers", sa.Text, nullable=False),
        sa.Column("allow_consumers", sa.Text, nullable=False),
        sa.Column("deny_consumers", sa.Text, nullable=False),
        sa.Column("publisher", sa.String(128), nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("dataset_policies")
