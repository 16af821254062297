"""Initial schema: contexts, bundles, bundle files, tags, provenance links.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contexts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.UniqueConstraint("name", name="uq_contexts_name"),
    )
    op.create_table(
        "bundles",
        sa.Column("uuid", sa.String(36), primary_key=True),
        sa.Column(
            "context_id",
            sa.Integer,
            sa.ForeignKey("contexts.id", ondelete="CASCADE", name="fk_bundles_context"),
            nullable=False,
        ),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("processing_name", sa.String(256), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("committed", sa.Boolean, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("presentation", sa.String(32), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("code_version", sa.Text, nullable=False),
        sa.Column("start_time", sa.Float, nullable=True),
        sa.Column("stop_time", sa.Float, nullable=True),
        sa.Column("file_count", sa.Integer, nullable=False),
        sa.Column("total_size", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_bundles_context_name_created", "bundles", ["context_id", "name", "created"])
    op.create_index("ix_bundles_context_created", "bundles", ["context_id", "created"])
    op.create_table(
        "bundle_files",
        sa.Column(
            "bundle_uuid",
            sa.String(36),
            sa.ForeignKey("bundles.uuid", ondelete="CASCADE", name="fk_bundle_files_bundle"),
            primary_key=True,
        ),
        sa.Column("path", sa.String(1024), primary_key=True),
        sa.Column("blob_hash", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_bundle_files_blob_hash", "bundle_files", ["blob_hash"])
    op.create_table(
        "tags",
        sa.Column(
            "bundle_uuid",
            sa.String(36),
            sa.ForeignKey("bundles.uuid", ondelete="CASCADE", name="fk_tags_bundle"),
            primary_key=True,
        ),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_index("ix_tags_key_value", "tags", ["key", "value"])
    op.create_table(
        "links",
        sa.Column(
            "bundle_uuid",
            sa.String(36),
            sa.ForeignKey("bundles.uuid", ondelete="CASCADE", name="fk_links_bundle"),
            primary_key=True,
        ),
        sa.Column("target_uuid", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("arg_name", sa.String(128), primary_key=True),
    )
    op.create_index("ix_links_target", "links", ["target_uuid"])


def downgrade() -> None:
    for table in ("links", "tags", "bundle_files", "bundles", "contexts"):
        op.drop_table(table)
