"""Jobs and their events (the job layer: assay.jobs).

Revision ID: 0004
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("job_id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("machine", sa.String(64), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("state_code", sa.Integer, nullable=False),
        sa.Column("environment", sa.String(128), nullable=False),
        sa.Column("owner", sa.String(256), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("result", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
        sa.Column("started", sa.Float, nullable=True),
        sa.Column("finished", sa.Float, nullable=True),
        sa.Column("last_seen", sa.Float, nullable=True),
        sa.Column("pid", sa.Integer, nullable=True),
        sa.Column("pgid", sa.Integer, nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("workdir", sa.String(4096), nullable=True),
        sa.Column("stop_requested", sa.Boolean, nullable=False),
        sa.Column("parent_job_id", sa.String(36), nullable=True),
        sa.Column("launch", sa.Text, nullable=True),
        sa.Column("last_seq", sa.Integer, nullable=False),
    )
    op.create_index("ix_jobs_kind_created", "jobs", ["kind", "created"])
    op.create_index("ix_jobs_state", "jobs", ["state"])
    op.create_index("ix_jobs_environment_state", "jobs", ["environment", "state"])
    op.create_index("ix_jobs_parent", "jobs", ["parent_job_id"])
    op.create_index("ix_jobs_created", "jobs", ["created"])
    op.create_table(
        "job_events",
        sa.Column(
            "job_id",
            sa.String(36),
            sa.ForeignKey("jobs.job_id", ondelete="CASCADE", name="fk_job_events_job"),
            primary_key=True,
        ),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("from_state", sa.String(32), nullable=True),
        sa.Column("to_state", sa.String(32), nullable=True),
        sa.Column("payload", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("job_events")
    op.drop_table("jobs")
