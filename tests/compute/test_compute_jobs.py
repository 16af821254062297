"""Compute jobs end to end through the ``assay.compute`` face and the job layer's executor:
real processes, the bubblewrap sandbox, SQLite and PostgreSQL catalogs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from compute_helpers import OCEAN_SCRIPT, add_dataset, make_service, raw_meta
from sqlalchemy import func, select

from assay.bundles.workspace import open_workspace
from assay.catalog.schema import jobs
from assay.compute import Compute, ComputeInput
from assay.computejobs import publishing
from assay.core.errors import (
    EnvironmentNotFound,
    InvalidInput,
    InvalidTransition,
    JobNotFound,
    NotConsumable,
    NotJobOwner,
    ResultNotFound,
    SandboxUnavailable,
)
from assay.jobs import store as job_store
from assay.jobs.policies import publish

ENVIRONMENTS = """\
environments:
  - id: sandboxed
    isolation: sandbox
    network: false
    max_jobs: 2
    description: the compute-to-data slot
  - id: open
    isolation: none
    max_jobs: 2
  - id: paid
    price_min: 0.5
    isolation: sandbox
    network: false
"""


@pytest.fixture
def home(assay_home: Path) -> Path:
    assay_home.mkdir(parents=True, exist_ok=True)
    (assay_home / "environments.yaml").write_text(ENVIRONMENTS)
    return assay_home


def _job_rows() -> int:
    with open_workspace().read() as conn:
        return conn.execute(select(func.count()).select_from(jobs)).scalar_one()


def _compute_dataset(tmp_path: Path, **policy: object) -> str:
    reference = add_dataset(
        tmp_path, "hospital", "notes", {"a.txt": "wind\ncalm\n", "sub/b.txt": "wind\n"}
    )
    publish("hospital", "notes", "compute", **policy)  # type: ignore[arg-type]
    return reference


def test_ocean_script_runs_unchanged_in_the_sandbox(home: Path, tmp_path: Path) -> None:
    main = _compute_dataset(tmp_path, allow_raw_algorithm=True)
    extra = add_dataset(tmp_path, "hospital", "more", {"c.txt": "wind\n"})
    compute = Compute()
    job_id = compute.start(
        "alice",
        main,
        "sandboxed",
        algorithm_meta=raw_meta(OCEAN_SCRIPT.read_text()),
        algorithm_algocustomdata={"word": "wind"},
        additional_datasets=[ComputeInput(extra, key="extra")],
    )
    status = compute.wait(job_id, "alice", timeout=120)
    assert status["state"] == "FINISHED", status
    assert (
        status["ok"] and status["status"] == 70 and status["dateFinished"] >= status["dateCreated"]
    )
    assert status["results"][0]["type"] == "output"
    summary = json.loads(compute.compute_job_result_logs(job_id, "alice")[0])
    assert summary == {
        "word": "wind",
        "datasets": {"notes": {"lines": 3, "matches": 2}, "extra": {"lines": 1, "matches": 1}},
    }
    runs = [e for e in job_store.list_events(job_id) if e.event == "run"]
    assert runs[0].payload["sandbox"] is True  # it really ran under bubblewrap
    transitions = [e.to_state for e in job_store.list_events(job_id) if e.type == "transition"]
    assert transitions == ["CREATED", "QUEUED", "PROVISIONING", "RUNNING", "PUBLISHING", "FINISHED"]
    # the consumer gets outputs and logs; every staged copy of the inputs is gone
    assert all(r["filename"] != "a.txt" for r in status["results"])
    assert not (home / "compute-jobs" / job_id / "inputs").exists()
    assert not (home / "compute-staging" / job_id).exists()
    assert status["outputBundle"].startswith(f"assay://compute/job-{job_id}@")
    first = compute.result(job_id, 0, "alice")
    assert first["filename"] == "summary.json" and Path(first["path"]).exists()
    # the same work again is the same job; nothing new is recorded
    rows = _job_rows()
    again = compute.start(
        "alice",
        main,
        "sandboxed",
        algorithm_meta=raw_meta(OCEAN_SCRIPT.read_text()),
        algorithm_algocustomdata={"word": "wind"},
        additional_datasets=[ComputeInput(extra, key="extra")],
    )
    assert again == job_id and _job_rows() == rows
    # another consumer asking for these results is refused, and sees nothing
    with pytest.raises(NotJobOwner):
        compute.status(job_id, "mallory")
    with pytest.raises(NotJobOwner):
        compute.result(job_id, 0, "mallory")
    with pytest.raises(ResultNotFound, match=r"valid indexes are 0\.\.3"):
        compute.result(job_id, 4, "alice")
    # stop of a finished job: refused, nothing changes
    with pytest.raises(InvalidTransition, match="already FINISHED"):
        compute.stop(job_id, "alice")
    assert compute.status(job_id, "alice")["state"] == "FINISHED"


def test_refusals_before_anything_is_recorded(home: Path, tmp_path: Path) -> None:
    main = _compute_dataset(tmp_path, allow_consumers=["bob"])
    compute = Compute()
    with pytest.raises(EnvironmentNotFound, match="no compute environment 'nope'"):
        compute.start("bob", main, "nope", algorithm_meta=raw_meta("pass\n"))
    with pytest.raises(NotConsumable, match="NOT_IN_ALLOW_LIST") as caught:
        compute.start("alice", main, "sandboxed", algorithm_meta=raw_meta("pass\n"))
    assert "rule: allow_consumers" in caught.value.message
    with pytest.raises(NotConsumable, match="RAW_ALGORITHM_NOT_ALLOWED") as caught:
        compute.start("bob", main, "sandboxed", algorithm_meta=raw_meta("pass\n"))
    assert caught.value.details["rule"] == "allow_raw_algorithm"
    with pytest.raises(NotConsumable, match="ISOLATION_REQUIRED"):
        compute.start("bob", main, "open", algorithm_meta=raw_meta("pass\n"))
    with pytest.raises(JobNotFound):
        compute.status("11111111-2222-3333-4444-555555555555", "bob")
    assert _job_rows() == 0


def test_code_changed_after_trust_is_refused_with_both_hashes(home: Path, tmp_path: Path) -> None:
    folder = make_service(tmp_path / "services")
    main = add_dataset(tmp_path, "hospital", "notes", {"a.txt": "1"})
    from assay.computejobs.trust import publish_dataset

    policy = publish_dataset("hospital", "notes", "compute", trust=["lab/counter:1.0.0"])
    pinned = policy.trusted_algorithms[0].code_hash
    with open(folder / "app.py", "a") as handle:
        handle.write("\n# changed after it was trusted\n")
    with pytest.raises(NotConsumable, match="CODE_HASH_MISMATCH") as caught:
        Compute().start("alice", main, "sandboxed", algorithm="lab/counter:1.0.0")
    current = caught.value.details["current_code_hash"]
    assert caught.value.details["pinned_code_hash"] == pinned and current != pinned
    assert pinned in caught.value.message and current in caught.value.message
    assert _job_rows() == 0


def test_a_trusted_service_runs_sandboxed(home: Path, tmp_path: Path) -> None:
    make_service(tmp_path / "services")
    main = add_dataset(tmp_path, "hospital", "notes", {"a.txt": "1", "b.txt": "2"})
    from assay.computejobs.trust import publish_dataset

    publish_dataset("hospital", "notes", "compute", trust=["lab/counter:1.0.0"])
    compute = Compute()
    job_id = compute.start("alice", main, "sandboxed", algorithm="lab/counter:1.0.0")
    status = compute.wait(job_id, "alice", timeout=120)
    assert status["state"] == "FINISHED", (status, _log(compute, job_id))
    values = json.loads(compute.compute_job_result_logs(job_id, "alice")[0])
    assert values == {"counts": {"notes": 2}, "values": {}}  # no custom data: {}


def _log(compute: Compute, job_id: str) -> str:
    logs = compute.compute_job_result_logs(job_id, "alice", log_type="algorithmLog")
    return b"".join(logs).decode(errors="replace")


def test_an_algorithm_that_writes_nothing_finishes_empty(home: Path, tmp_path: Path) -> None:
    main = _compute_dataset(tmp_path, allow_raw_algorithm=True)
    compute = Compute()
    job_id = compute.start("alice", main, "sandboxed", algorithm_meta=raw_meta("print('hi')\n"))
    status = compute.wait(job_id, "alice", timeout=120)
    assert status["state"] == "FINISHED"
    assert "output" not in [r["type"] for r in status["results"]]
    assert compute.compute_job_result_logs(job_id, "alice") == []
    assert b"hi" in compute.compute_job_result_logs(job_id, "alice", "algorithmLog")[0]


def test_stop_ends_stopped(home: Path, tmp_path: Path) -> None:
    main = _compute_dataset(tmp_path, allow_raw_algorithm=True)
    code = (
        "import os, time\n"
        "open(os.path.join(os.environ['OUTPUTS'], 'started'), 'w').close()\n"
        "time.sleep(600)\n"
    )
    compute = Compute()
    job_id = compute.start("alice", main, "sandboxed", algorithm_meta=raw_meta(code))
    workdir = home / "compute-jobs" / job_id
    deadline = time.monotonic() + 60
    while not (workdir / "outputs" / "started").exists():  # the algorithm is running
        assert time.monotonic() < deadline, compute.status(job_id, "alice")
        time.sleep(0.05)
    with pytest.raises(NotJobOwner):
        compute.stop(job_id, "mallory")
    compute.stop(job_id, "alice")
    status = compute.wait(job_id, "alice", timeout=60)
    assert status["state"] == "STOPPED" and status["status"] == 43
    events = [e.event for e in job_store.list_events(job_id) if e.type == "transition"]
    assert events[-1] == "stop" and "finish" not in events
    # what it left is published all the same, marked stopped
    assert [r["filename"] for r in status["results"] if r["type"] == "output"] == ["started"]
    assert status["outputBundle"].startswith(f"assay://compute/job-{job_id}@")
    bundle = publishing.output_bundle(open_workspace(), job_id)
    assert bundle is not None and bundle.tags["job_outcome"] == "stopped"


def test_environments_and_the_free_one(home: Path) -> None:
    compute = Compute()
    listed = {env["id"]: env for env in compute.get_c2d_environments()}
    assert set(listed) == {"sandboxed", "open", "paid"}
    assert listed["paid"]["priceMin"] == 0.5 and listed["sandboxed"]["isolation"] == "sandbox"
    assert compute.get_free_c2d_environment()["id"] in {"sandboxed", "open"}  # type: ignore[index]
    (home / "environments.yaml").write_text("environments:\n  - id: paid\n    price_min: 1\n")
    assert compute.get_free_c2d_environment() is None


def test_without_bubblewrap_compute_access_is_refused(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    main = _compute_dataset(tmp_path, allow_raw_algorithm=True)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(SandboxUnavailable, match="install it") as caught:
        Compute().start("alice", main, "sandboxed", algorithm_meta=raw_meta("pass\n"))
    assert "\n" not in caught.value.message and "bubblewrap" in caught.value.message
    assert _job_rows() == 0


def test_additional_datasets_are_checked_too(home: Path, tmp_path: Path) -> None:
    open_data = add_dataset(tmp_path, "public", "weather", {"w.txt": "wind\n"})
    closed = _compute_dataset(tmp_path)  # compute access, raw code not allowed
    with pytest.raises(NotConsumable, match="hospital/notes does not allow raw algorithms"):
        Compute().start(
            "alice",
            open_data,
            "sandboxed",
            algorithm_meta=raw_meta("pass\n"),
            additional_datasets=[closed],
        )
    assert _job_rows() == 0


def test_open_data_runs_without_a_sandbox(home: Path, tmp_path: Path) -> None:
    main = add_dataset(tmp_path, "public", "weather", {"w.txt": "wind\nwind\n"})
    compute = Compute()
    job_id = compute.start(
        "alice",
        main,
        "open",
        algorithm_meta=raw_meta(OCEAN_SCRIPT.read_text()),
        algorithm_algocustomdata={"word": "wind"},
    )
    status = compute.wait(job_id, "alice", timeout=120)
    assert status["state"] == "FINISHED", status
    summary = json.loads(compute.compute_job_result_logs(job_id, "alice")[0])
    assert summary["datasets"] == {"weather": {"lines": 2, "matches": 2}}
    runs = [e for e in job_store.list_events(job_id) if e.event == "run"]
    assert runs[0].payload["sandbox"] is False


def test_a_staging_failure_ends_provision_failed(home: Path, tmp_path: Path) -> None:
    main = add_dataset(tmp_path, "public", "weather", {"w.txt": "wind\n"})
    from assay import api

    api.add("public", "bad-algo", str(OCEAN_SCRIPT), tags={"entrypoint": 'python "$ALGO'})
    compute = Compute()
    with pytest.raises(InvalidInput, match="entrypoint"):
        compute.start("alice", main, "open", algorithm="assay://public/bad-algo")
    (record,) = job_store.list_jobs(kind="compute")
    assert record.state == "PROVISION_FAILED" and "staging" in (record.error or "")
    assert compute.status(record.job_id, "alice")["ok"] is False
    assert not (home / "compute-staging" / record.job_id).exists()


def test_force_runs_the_same_work_again(home: Path, tmp_path: Path) -> None:
    main = add_dataset(tmp_path, "public", "weather", {"w.txt": "wind\n"})
    code = "import os, time\nopen(os.environ['OUTPUTS'] + '/t', 'w').write(str(time.time_ns()))\n"
    compute = Compute()
    job_id = compute.start("alice", main, "open", algorithm_meta=raw_meta(code))
    compute.wait(job_id, "alice", timeout=120)
    first = compute.compute_job_result_logs(job_id, "alice")
    assert compute.start("alice", main, "open", algorithm_meta=raw_meta(code)) == job_id
    assert compute.compute_job_result_logs(job_id, "alice") == first  # not re-run
    again = compute.start("alice", main, "open", algorithm_meta=raw_meta(code), force=True)
    assert again == job_id
    assert compute.wait(job_id, "alice", timeout=120)["state"] == "FINISHED"
    assert compute.compute_job_result_logs(job_id, "alice") != first
    other = compute.start("bob", main, "open", algorithm_meta=raw_meta(code))
    assert other != job_id  # another consumer's job is its own
    compute.wait(other, "bob", timeout=120)


def test_a_sandboxed_job_sees_neither_the_store_nor_the_catalog(home: Path, tmp_path: Path) -> None:
    main = _compute_dataset(tmp_path, allow_raw_algorithm=True)
    probe = f"""
import json, os
found = {{}}
for name in ("catalog.db", "store", "compute-staging", "views"):
    found[name] = os.path.exists(os.path.join({str(home)!r}, name))
inputs = os.environ["INPUTS"]
try:
    open(os.path.join(inputs, "notes", "a.txt"), "a").write("changed")
    found["inputs_writable"] = True
except OSError:
    found["inputs_writable"] = False
json.dump(found, open(os.path.join(os.environ["OUTPUTS"], "seen.json"), "w"))
"""
    assert (home / "store").is_dir()  # (catalog.db too on SQLite)
    compute = Compute()
    job_id = compute.start("alice", main, "sandboxed", algorithm_meta=raw_meta(probe))
    assert compute.wait(job_id, "alice", timeout=120)["state"] == "FINISHED"
    seen = json.loads(compute.compute_job_result_logs(job_id, "alice")[0])
    assert seen == {
        "catalog.db": False,
        "store": False,
        "compute-staging": False,
        "views": False,
        "inputs_writable": False,
    }


def test_a_job_past_its_wall_clock_times_out_with_its_logs(home: Path, tmp_path: Path) -> None:
    (home / "environments.yaml").write_text(
        ENVIRONMENTS + "  - id: short\n    isolation: none\n    max_duration_s: 1\n"
    )
    main = add_dataset(tmp_path, "public", "weather", {"w.txt": "wind\n"})
    code = "import time\nprint('working', flush=True)\ntime.sleep(60)\n"
    compute = Compute()
    job_id = compute.start("alice", main, "short", algorithm_meta=raw_meta(code))
    status = compute.wait(job_id, "alice", timeout=60)
    assert status["state"] == "TIMED_OUT" and status["status"] == 42 and status["ok"] is False
    assert b"working" in compute.compute_job_result_logs(job_id, "alice", "algorithmLog")[0]


def test_a_trusted_algorithm_bundle_and_its_new_version(home: Path, tmp_path: Path) -> None:
    from assay.computejobs.trust import publish_dataset

    main = add_dataset(tmp_path, "hospital", "notes", {"a.txt": "wind\n"})
    add_dataset(tmp_path, "algos", "count", {"count.py": OCEAN_SCRIPT.read_text()})
    policy = publish_dataset("hospital", "notes", "compute", trust=["assay://algos/count"])
    pinned = policy.trusted_algorithms[0].code_hash
    compute = Compute()
    job_id = compute.start("alice", main, "sandboxed", algorithm="assay://algos/count")
    assert compute.wait(job_id, "alice", timeout=120)["state"] == "FINISHED"
    changed = OCEAN_SCRIPT.read_text() + "\n# a new version\n"
    add_dataset(tmp_path / "v2", "algos", "count", {"count.py": changed})
    rows = _job_rows()
    with pytest.raises(NotConsumable, match="CODE_HASH_MISMATCH") as caught:
        compute.start("alice", main, "sandboxed", algorithm="assay://algos/count")
    assert caught.value.details["pinned_code_hash"] == pinned
    assert _job_rows() == rows
