"""Compute-to-data jobs on a dask environment: run by a worker, published in the shared
catalog; compute-access datasets are refused there (their sandbox is local-only)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from dask_helpers import HERE, needs_dask

from assay.compute import Compute
from assay.core.errors import SandboxUnavailable
from assay.jobs import store

sys.path.insert(0, str(HERE.parent / "compute"))
from compute_helpers import OCEAN_SCRIPT, add_dataset, raw_meta

pytestmark = [pytest.mark.postgres, pytest.mark.dask, needs_dask]


def test_a_compute_job_runs_on_a_worker(dask_home: Path, tmp_path: Path, cluster: Any) -> None:
    main = add_dataset(tmp_path, "public", "weather", {"w.txt": "wind\nrain\nwind\n"})
    compute = Compute()
    job_id = compute.start(
        "alice",
        main,
        "cluster",
        algorithm_meta=raw_meta(OCEAN_SCRIPT.read_text()),
        algorithm_algocustomdata={"word": "wind"},
    )
    status = compute.wait(job_id, "alice", timeout=120)
    assert status["state"] == "FINISHED", status
    summary = json.loads(compute.compute_job_result_logs(job_id, "alice")[0])
    assert summary["datasets"] == {"weather": {"lines": 3, "matches": 2}}
    record = store.get_job(job_id)
    assert record.environment == "cluster"
    runs = [e for e in store.list_events(job_id) if e.event == "run"]
    assert runs and runs[0].payload.get("sandbox") is False
    # the supervising process was a worker, not this one
    assert record.pid != os.getpid()


def test_compute_access_data_is_refused_on_dask(dask_home: Path, tmp_path: Path) -> None:
    from assay.jobs.policies import publish

    main = add_dataset(tmp_path, "private", "secret", {"s.txt": "x\n"})
    publish("private", "secret", "compute", allow_raw_algorithm=True)
    with pytest.raises(SandboxUnavailable, match="sandbox is local-only"):
        Compute().start("alice", main, "cluster", algorithm_meta=raw_meta("pass\n"))
    assert store.list_jobs(kind="compute") == []
