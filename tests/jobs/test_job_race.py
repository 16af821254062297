"""Two real processes fire conflicting events at one job: exactly one wins, on both catalogs.

The test holds the job's write lock (SQLite ``BEGIN IMMEDIATE``; PostgreSQL ``SELECT ... FOR
UPDATE`` on the row) while both racers start. Each racer takes a timestamp, drops a marker
file and calls ``fire``; the test releases the lock only when both markers exist (and, on
PostgreSQL, when the server shows both racers waiting on the lock). So both calls are really in
flight together: the assertion ``max(passed) < min(returned)`` checks it from the racers' own
clocks.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from sqlalchemy import Engine, text

from assay.bundles.workspace import open_workspace
from assay.catalog import job_queries
from assay.jobs import store
from assay.jobs.ids import job_id
from helpers import start_python

RACER = """
import json, sys, time
from pathlib import Path
from assay.core.errors import InvalidTransition
from assay.jobs import store

job, event, markers, me = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4]
store.get_job(job)  # open the workspace and a connection first
passed = time.time()
(markers / me).touch()
try:
    record = store.fire(job, event, error="lost" if event == "fail" else None,
                        result={"by": me} if event == "finish" else None)
    outcome = {"won": True, "state": record.state}
except InvalidTransition as exc:
    outcome = {"won": False, "error": exc.message}
outcome.update(passed=passed, returned=time.time(), me=me, event=event)
print(json.dumps(outcome))
"""


def _wait_for(condition, what: str, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def _waiting_on_locks(engine: Engine) -> int:
    """Backends of this test database waiting for a lock (our two racers)."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        )


def _race(tmp_path: Path, round_: int) -> list[dict[str, object]]:
    jid = job_id("race", round_)
    store.create_job("compute", jid, spec={})
    store.fire(jid, "run")
    markers = tmp_path / f"markers-{round_}"
    markers.mkdir()
    workspace = open_workspace()
    postgres = workspace.engine.dialect.name == "postgresql"
    with workspace.write() as conn:
        job_queries.job(conn, jid, for_update=True)  # hold the lock the racers need
        racers = [
            start_python(RACER, jid, "finish", str(markers), "a"),
            start_python(RACER, jid, "fail", str(markers), "b"),
        ]
        _wait_for(lambda: len(list(markers.iterdir())) == 2, "both racers at the start line")
        if postgres:
            _wait_for(lambda: _waiting_on_locks(workspace.engine) >= 2, "both racers blocked")
    outcomes = []
    for racer in racers:
        out, err = racer.communicate(timeout=120)
        assert racer.returncode == 0, err
        outcomes.append(json.loads(out.strip().splitlines()[-1]))
    return outcomes


def test_conflicting_events_from_two_processes_exactly_one_wins(
    assay_home: Path, tmp_path: Path
) -> None:
    for round_ in range(3):
        outcomes = _race(tmp_path, round_)
        # Both calls overlapped: each was in fire() before either returned.
        assert max(o["passed"] for o in outcomes) < min(o["returned"] for o in outcomes)  # type: ignore[type-var]
        won = [o for o in outcomes if o["won"]]
        lost = [o for o in outcomes if not o["won"]]
        assert len(won) == 1 and len(lost) == 1, outcomes
        final = store.get_job(job_id("race", round_))
        assert final.state == won[0]["state"]
        assert final.state in lost[0]["error"]  # type: ignore[operator]
        # The loser changed nothing: no error on a FINISHED job, no result on a FAILED one.
        if final.state == "FINISHED":
            assert final.error is None and final.result == {"by": "a"}
        else:
            assert final.result is None and final.error == "lost"
        transitions = [e.event for e in store.list_events(final.job_id)]
        assert transitions == ["create", "run", won[0]["event"]]
