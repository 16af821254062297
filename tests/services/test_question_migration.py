"""Migration 0008 keeps the questions asked before it: rows and events become jobs, job events
and side rows; heartbeat rows are dropped (their newest time kept as last_seen); a question
left running by a process gone since is reconciled on the first wait. And back again."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from assay.bundles.workspace import close_workspaces
from assay.catalog.migrations.runner import alembic_config, upgrade_to_head
from assay.core.errors import ChildCrashed
from assay.jobs import get_job, list_events
from assay.services import Child, get_question, list_questions
from assay.services import events as question_events

NOW = time.time() - 3600


def _old_catalog(home: Path) -> str:
    home.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{home / 'catalog.db'}"
    engine = create_engine(url)
    command.upgrade(alembic_config(engine), "0004")
    rows = [
        ("q-done-0000-0000-000000000001", "succeeded", {"double": 4}, None),
        ("q-crash-000-0000-000000000002", "crashed", None, {"type": "x.Crash", "message": "m"}),
        ("q-run-00000-0000-000000000003", "running", None, None),
    ]
    with engine.begin() as conn:
        for uuid, status, output, error in rows:
            conn.execute(
                text(
                    "INSERT INTO questions (question_uuid, parent_question_uuid, "
                    "originator_question_uuid, service_id, backend, status, created, finished, "
                    "input_values, input_manifest, output_values, output_manifest, error, details) "
                    "VALUES (:u, NULL, :u, 'test/old:1.0.0', 'local', :s, :c, :f, '{\"n\": 2}', "
                    "NULL, :o, NULL, :e, :d)"
                ),
                {
                    "u": uuid,
                    "s": status,
                    "c": NOW,
                    "f": None if status == "running" else NOW + 1,
                    "o": json.dumps(output) if output is not None else None,
                    "e": json.dumps(error) if error is not None else None,
                    "d": json.dumps({"asker_pid": 999_999_999, "retry_count": 0}),
                },
            )
            kinds = ["question", "delivery", "heartbeat", "log_record", "heartbeat"]
            kinds += {"succeeded": ["result"], "crashed": ["exception"], "running": []}[status]
            for seq, kind in enumerate(kinds, start=1):
                payload = {"message": "hello"} if kind == "log_record" else {}
                if kind == "result":
                    payload = {"output_values": output, "output_manifest": None}
                if kind == "exception":
                    payload = dict(error or {})
                conn.execute(
                    text(
                        "INSERT INTO question_events (question_uuid, seq, kind, at, payload) "
                        "VALUES (:u, :seq, :k, :at, :p)"
                    ),
                    {"u": uuid, "seq": seq, "k": kind, "at": NOW + seq, "p": json.dumps(payload)},
                )
    return url


def test_questions_asked_before_the_upgrade_are_kept(sqlite_home: Path) -> None:
    url = _old_catalog(sqlite_home)
    engine = create_engine(url)
    upgrade_to_head(engine)
    close_workspaces()
    done = get_question("q-done-0000-0000-000000000001")
    assert (done.status, done.output_values, done.input_values) == (
        "succeeded",
        {"double": 4},
        {"n": 2},
    )
    kinds = [e.kind for e in question_events.list_events(done.question_uuid)]
    assert kinds == ["question", "delivery", "log_record", "result"]  # heartbeats dropped
    assert [e.seq for e in list_events(done.question_uuid)] == [1, 2, 3, 4]
    job = get_job(done.question_uuid)
    assert (job.kind, job.state, job.last_seen) == ("question", "FINISHED", NOW + 5)
    crashed = get_question("q-crash-000-0000-000000000002")
    assert crashed.status == "crashed" and crashed.error is not None
    assert {q.question_uuid for q in list_questions(status="crashed")} == {crashed.question_uuid}
    # A question left running (its asker is long gone) is reconciled by the first wait.
    with pytest.raises(ChildCrashed, match="not been seen"):
        Child.get_answer("q-run-00000-0000-000000000003", timeout=30)
    assert get_job("q-run-00000-0000-000000000003").state == "FAILED"


def test_the_downgrade_gives_the_questions_back(sqlite_home: Path) -> None:
    url = _old_catalog(sqlite_home)
    engine = create_engine(url)
    upgrade_to_head(engine)
    command.downgrade(alembic_config(engine), "0004")
    with engine.connect() as conn:
        statuses = dict(conn.execute(text("SELECT question_uuid, status FROM questions")).all())
        kinds = [
            row[0]
            for row in conn.execute(
                text("SELECT kind FROM question_events WHERE question_uuid = :u ORDER BY seq"),
                {"u": "q-done-0000-0000-000000000001"},
            )
        ]
        jobs = conn.execute(text("SELECT count(*) FROM jobs")).scalar()
    assert statuses == {
        "q-done-0000-0000-000000000001": "succeeded",
        "q-crash-000-0000-000000000002": "crashed",
        "q-run-00000-0000-000000000003": "running",
    }
    assert kinds == ["question", "delivery", "log_record", "result"]
    assert jobs == 0
