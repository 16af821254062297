"""Questions are jobs: ``questions`` + ``question_events`` become jobs of kind ``question``
(``jobs`` + ``job_events``) with the side table ``question_jobs``.

Existing data is kept, converted row by row:

- each question becomes a job (``kind="question"``, machine ``job``): its inputs go to
  ``spec``, its outputs to ``result``, the asker's pid (``details.asker_pid``) to ``pid``;
  status -> state: asked CREATED, running RUNNING, succeeded FINISHED, failed and crashed
  FAILED, timed_out TIMED_OUT, cancelled STOPPED. A question still ``asked``/``running`` keeps
  that state; the first wait on it or reconciliation ends it (its asker died with the upgrade
  or is gone).
- its service id, backend, parent/originator uuids, error and details go to ``question_jobs``;
- its events become job events, renumbered 1..n without gaps: ``question`` -> transition
  ``create``; ``delivery`` -> transition ``run``; ``log_record`` -> ``log``;
  ``monitor_message`` -> ``monitor``; ``result`` -> transition ``finish``; ``exception`` ->
  transition ``fail`` (``time_out`` for a timed-out question); ``cancelled`` -> transition
  ``stop``. ``heartbeat`` rows are dropped (heartbeats now update ``jobs.last_seen``: the
  newest heartbeat's time is kept there). Payloads are kept as they were.

The downgrade converts back the same way (heartbeats are gone; transitions of other kinds of
job are not questions and stay in ``jobs``).

Revision ID: 0008
Revises: 0007
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
# Chained after 0004 here because it moves questions into 0004's tables (the lead re-chains).
down_revision = "0007"
branch_labels = None
depends_on = None

STATES = {
    "asked": ("CREATED", 1),
    "running": ("RUNNING", 40),
    "succeeded": ("FINISHED", 70),
    "failed": ("FAILED", 41),
    "crashed": ("FAILED", 41),
    "timed_out": ("TIMED_OUT", 42),
    "cancelled": ("STOPPED", 43),
}
TERMINAL = {"FINISHED", "FAILED", "TIMED_OUT", "STOPPED"}


def _side_table() -> None:
    op.create_table(
        "question_jobs",
        sa.Column(
            "job_id",
            sa.String(36),
            sa.ForeignKey("jobs.job_id", ondelete="CASCADE", name="fk_question_jobs_job"),
            primary_key=True,
        ),
        sa.Column("service_id", sa.String(256), nullable=False),
        sa.Column("backend", sa.String(32), nullable=False),
        sa.Column("parent_question_uuid", sa.String(36), nullable=True),
        sa.Column("originator_question_uuid", sa.String(36), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("details", sa.Text, nullable=False),
    )
    op.create_index("ix_question_jobs_service", "question_jobs", ["service_id"])
    op.create_index("ix_question_jobs_parent", "question_jobs", ["parent_question_uuid"])
    op.create_index("ix_question_jobs_originator", "question_jobs", ["originator_question_uuid"])


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _event_rows(question: Any, events: Sequence[Any]) -> tuple[list[dict[str, Any]], float | None]:
    """The job events of one old question, renumbered; and its newest heartbeat's time."""
    rows: list[dict[str, Any]] = []
    state: str | None = None
    last_heartbeat: float | None = None
    final = STATES.get(question.status, ("FAILED", 41))[0]
    for old in events:
        transition: tuple[str, str] | None = None
        type_ = ""
        if old.kind == "heartbeat":
            last_heartbeat = old.at
            continue
        if old.kind == "question":
            transition = ("create", "CREATED")
        elif old.kind == "delivery":
            transition = ("run", "RUNNING")
        elif old.kind == "result":
            transition = ("finish", "FINISHED")
        elif old.kind == "exception":
            transition = ("time_out", "TIMED_OUT") if final == "TIMED_OUT" else ("fail", "FAILED")
        elif old.kind == "cancelled":
            transition = ("stop", "STOPPED")
        elif old.kind == "log_record":
            type_ = "log"
        elif old.kind == "monitor_message":
            type_ = "monitor"
        else:
            type_ = old.kind[:32]
        row = {
            "job_id": question.question_uuid,
            "seq": len(rows) + 1,
            "at": old.at,
            "payload": old.payload,
            "type": "transition" if transition else type_,
            "event": transition[0] if transition else "",
            "from_state": state if transition else None,
            "to_state": transition[1] if transition else None,
        }
        if transition:
            state = transition[1]
        rows.append(row)
    return rows, last_heartbeat


def upgrade() -> None:
    _side_table()
    bind = op.get_bind()
    metadata = sa.MetaData()
    questions = sa.Table("questions", metadata, autoload_with=bind)
    question_events = sa.Table("question_events", metadata, autoload_with=bind)
    jobs = sa.Table("jobs", metadata, autoload_with=bind)
    job_events = sa.Table("job_events", metadata, autoload_with=bind)
    question_jobs = sa.Table("question_jobs", metadata, autoload_with=bind)
    for question in bind.execute(sa.select(questions).order_by(questions.c.created)).all():
        events = bind.execute(
            sa.select(question_events)
            .where(question_events.c.question_uuid == question.question_uuid)
            .order_by(question_events.c.seq, question_events.c.id)
        ).all()
        rows, last_heartbeat = _event_rows(question, events)
        state, code = STATES.get(question.status, ("FAILED", 41))
        details = _loads(question.details) or {}
        asker = details.get("asker_pid")
        output_values = _loads(question.output_values)
        output_manifest = _loads(question.output_manifest)
        error = _loads(question.error)
        delivered = [row["at"] for row in rows if row["event"] == "run"]
        bind.execute(
            sa.insert(jobs).values(
                job_id=question.question_uuid,
                kind="question",
                machine="job",
                state=state,
                state_code=code,
                environment="local",
                owner=str(details.get("asker") or ""),
                spec=json.dumps(
                    {
                        "service_id": question.service_id,
                        "input_values": _loads(question.input_values),
                        "input_manifest": _loads(question.input_manifest),
                    },
                    sort_keys=True,
                ),
                result=(
                    json.dumps(
                        {"output_values": output_values, "output_manifest": output_manifest},
                        sort_keys=True,
                    )
                    if state == "FINISHED"
                    else None
                ),
                error=(f"{error.get('type')}: {error.get('message')}" if error else None),
                created=question.created,
                updated=question.finished or question.created,
                started=delivered[0] if delivered else None,
                finished=question.finished if state in TERMINAL else None,
                last_seen=last_heartbeat,
                pid=asker if isinstance(asker, int) else None,
                pgid=None,
                host=None,
                workdir=None,
                stop_requested=False,
                parent_job_id=question.parent_question_uuid,
                last_seq=len(rows),
            )
        )
        if rows:
            bind.execute(sa.insert(job_events), rows)
        if question.status == "crashed" and isinstance(error, dict):
            error = {**error, "crashed": True}
        bind.execute(
            sa.insert(question_jobs).values(
                job_id=question.question_uuid,
                service_id=question.service_id,
                backend=question.backend,
                parent_question_uuid=question.parent_question_uuid,
                originator_question_uuid=question.originator_question_uuid,
                error=json.dumps(error) if error is not None else None,
                details=question.details or "{}",
            )
        )
    op.drop_table("question_events")
    op.drop_table("questions")


_BACK = {"create": "question", "run": "delivery", "finish": "result", "fail": "exception"}
_BACK.update({"time_out": "exception", "stop": "cancelled"})
_STATUS = {
    "CREATED": "asked",
    "QUEUED": "asked",
    "PROVISIONING": "asked",
    "RUNNING": "running",
    "PUBLISHING": "running",
    "FINISHED": "succeeded",
    "PROVISION_FAILED": "failed",
    "FAILED": "failed",
    "TIMED_OUT": "timed_out",
    "STOPPED": "cancelled",
}


def downgrade() -> None:
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
    bind = op.get_bind()
    metadata = sa.MetaData()
    questions = sa.Table("questions", metadata, autoload_with=bind)
    question_events = sa.Table("question_events", metadata, autoload_with=bind)
    jobs = sa.Table("jobs", metadata, autoload_with=bind)
    job_events = sa.Table("job_events", metadata, autoload_with=bind)
    question_jobs = sa.Table("question_jobs", metadata, autoload_with=bind)
    joined = sa.select(
        jobs,
        question_jobs.c.service_id,
        question_jobs.c.backend,
        question_jobs.c.parent_question_uuid,
        question_jobs.c.originator_question_uuid,
        question_jobs.c.error.label("question_error"),
        question_jobs.c.details,
    ).join(question_jobs, question_jobs.c.job_id == jobs.c.job_id)
    for row in bind.execute(joined).all():
        spec = _loads(row.spec) or {}
        result = _loads(row.result) or {}
        error = _loads(row.question_error)
        status = _STATUS.get(row.state, "failed")
        if status == "failed" and isinstance(error, dict) and error.get("crashed"):
            status = "crashed"
        bind.execute(
            sa.insert(questions).values(
                question_uuid=row.job_id,
                parent_question_uuid=row.parent_question_uuid,
                originator_question_uuid=row.originator_question_uuid,
                service_id=row.service_id,
                backend=row.backend,
                status=status,
                created=row.created,
                finished=row.finished,
                input_values=json.dumps(spec.get("input_values")),
                input_manifest=(
                    json.dumps(spec["input_manifest"]) if spec.get("input_manifest") else None
                ),
                output_values=(
                    json.dumps(result.get("output_values")) if row.result is not None else None
                ),
                output_manifest=(
                    json.dumps(result["output_manifest"]) if result.get("output_manifest") else None
                ),
                error=json.dumps(error) if error is not None else None,
                details=row.details,
            )
        )
        events = bind.execute(
            sa.select(job_events)
            .where(job_events.c.job_id == row.job_id)
            .order_by(job_events.c.seq)
        ).all()
        old: list[dict[str, Any]] = []
        for event in events:
            if event.type == "transition":
                kind = _BACK.get(event.event)
                if kind is None:
                    continue  # publish and other steps had no question event
            else:
                kind = {"log": "log_record", "monitor": "monitor_message"}.get(
                    event.type, event.type
                )
            old.append(
                {
                    "question_uuid": row.job_id,
                    "seq": len(old) + 1,
                    "kind": kind,
                    "at": event.at,
                    "payload": event.payload,
                }
            )
        if old:
            bind.execute(sa.insert(question_events), old)
        bind.execute(sa.delete(jobs).where(jobs.c.job_id == row.job_id))
    op.drop_table("question_jobs")
