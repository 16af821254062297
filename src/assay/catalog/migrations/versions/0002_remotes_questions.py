"""Remotes (context binding, which bundles a remote holds) and questions with their events.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contexts") as batch:
        batch.add_column(sa.Column("remote_context", sa.String(128), nullable=True))
        batch.add_column(sa.Column("remote_url", sa.String(1024), nullable=True))
        batch.add_column(sa.Column("remote_options", sa.Text, nullable=True))
    op.create_table(
        "remote_bundles",
        sa.Column(
            "bundle_uuid",
            sa.String(36),
            sa.ForeignKey("bundles.uuid", ondelete="CASCADE", name="fk_remote_bundles_bundle"),
            primary_key=True,
        ),
        sa.Column("remote_url", sa.String(1024), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_table(
        "questions",
        sa.Column("question_uuid", sa.String(36), primary_key=True),
        sa.Column("parent_question_uuid", sa.String(36), nullable=True),
        sa.Column("originator_question_uuid", sa.String(36), nullable=True),
        sa.Column("service_id", sa.String(256), nullable=False),
        sa.Column("backend", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("finished", sa.Float, nullable=True),
        sa.Column("input_values", sa.Text, nullable=True),
        sa.Column("input_manifest", sa.Text, nullable=True),
        sa.Column("output_values", sa.Text, nullable=True),
        sa.Column("output_manifest", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("details", sa.Text, nullable=False),
    )
    op.create_index("ix_questions_parent", "questions", ["parent_question_uuid"])
    op.create_index("ix_questions_originator", "questions", ["originator_question_uuid"])
    op.create_table(
        "question_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("question_uuid", sa.String(36), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
    )
    op.create_index("ix_question_events_question_seq", "question_events", ["question_uuid", "seq"])


def downgrade() -> None:
    op.drop_table("question_events")
    op.drop_table("questions")
    op.drop_table("remote_bundles")
    with op.batch_alter_table("contexts") as batch:
        batch.drop_column("remote_options")
        batch.drop_column("remote_url")
        batch.drop_column("remote_context")
