"""Indexing a job's archive into bundles, as a job of its own; failures and crashes end visibly
(SQLite and PostgreSQL; the crash test kills a real indexing process)."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from pathlib import Path

import blake3
import pytest
from pjob_helpers import write

from assay import api
from assay.bundles import operations
from assay.bundles.workspace import Workspace
from assay.jobs import store
from assay.pipelinejobs import ArchiveIndexRequest, ManagedPipelineJob, ProductIndexRequest
from assay.pjobs.index_jobs import INDEX_KIND, recover
from assay.pjobs.pipelines import Pipeline
from helpers import start_python


def _finished_job(workspace: Workspace, files: dict[str, str | bytes], **kwargs: object):  # type: ignore[no-untyped-def]
    job = ManagedPipelineJob(workspace, "sd2e/tacobot", measurement_id="m1", **kwargs).setup()  # type: ignore[arg-type]
    assert job.job is not None
    write(Path(job.job.local_path), files)
    job.run()
    job.finish()
    return job


def test_index_archive_and_products(
    workspace: Workspace, pipeline: Pipeline, tmp_path: Path
) -> None:
    api.context("pipelinejobs")
    upstream = api.add(
        "pipelinejobs", "raw-plates", str(write_dir(tmp_path / "raw", {"p.fcs": "raw"}))
    )
    genome = api.add("pipelinejobs", "genome", str(write_dir(tmp_path / "ref", {"g.fa": "ACGT"})))
    files = {"out/a.csv": "1,2", "out/b.csv": "3,4", "logs/run.log": "ok", "plot.png": b"\x89PNG"}
    job = _finished_job(
        workspace,
        files,
        archive_patterns=[ArchiveIndexRequest([r"\.csv$", r"\.log$"], level="2", fixity="sha256")],
        product_patterns=[
            ProductIndexRequest(
                [r"^out/a\.csv$"], derived_from=["raw-plates"], derived_using=[genome.uuid]
            )
        ],
    )
    assert job.job is not None
    (Path(job.job.local_path) / "escape.csv").symlink_to(tmp_path / "raw" / "p.fcs")
    record = job.index()
    assert record.state == "FINISHED", record.error
    index = record.result["index"]  # type: ignore[index]
    assert index["files_seen"] == 4 and index["files_indexed"] == 3 and index["unmatched"] == 1
    archive_info, product_info = index["bundles"]
    archive_bundle = operations.resolve(workspace, "pipelinejobs", archive_info["uuid"])
    files_in = {f.path: f for f in operations.files_of(workspace, archive_bundle)}
    assert set(files_in) == {"out/a.csv", "out/b.csv", "logs/run.log"}  # no symlink, no png
    assert files_in["out/a.csv"].blob_hash == blake3.blake3(b"1,2").hexdigest()
    assert files_in["out/a.csv"].size == 3
    assert archive_bundle.params["sha256"]["out/b.csv"] == hashlib.sha256(b"3,4").hexdigest()
    assert archive_bundle.tags["level"] == "2" and archive_bundle.tags["pipelinejob"] == job._uuid()
    links = {(d.kind, d.uuid) for d in archive_bundle.dependencies}
    assert ("generated_by", job._uuid()) in links
    assert ("child_of", job.job.child_of[0]) in links
    product = operations.resolve(workspace, "pipelinejobs", product_info["uuid"])
    assert [f.path for f in operations.files_of(workspace, product)] == ["out/a.csv"]
    plinks = {(d.kind, d.uuid, d.arg_name) for d in product.dependencies}
    assert ("derived_from", upstream.uuid, "derived_from") in plinks
    assert ("acted_using", genome.uuid, "derived_using") in plinks
    assert "sha256" not in product.params
    # the indexing ran as a job, child of the managed job
    index_jobs = store.list_jobs(kind=INDEX_KIND, parent_job_id=job._uuid(), workspace=workspace)
    assert [j.state for j in index_jobs] == ["FINISHED"]
    # indexing again with nothing changed finds the same bundles
    job.index()
    again = job.job.result["index"]["bundles"]  # type: ignore[index]
    assert [b["uuid"] for b in again] == [archive_info["uuid"], product_info["uuid"]]


def write_dir(folder: Path, files: dict[str, str | bytes]) -> Path:
    write(folder, files)
    return folder


def test_default_request_indexes_everything(workspace: Workspace, pipeline: Pipeline) -> None:
    job = _finished_job(workspace, {"a.txt": "a", "d/b.txt": "b"})
    record = job.index()
    assert record.result is not None
    assert record.result["index"]["files_indexed"] == 2


def test_indexing_error_fails_the_job_visibly(workspace: Workspace, pipeline: Pipeline) -> None:
    job = _finished_job(
        workspace,
        {"a.csv": "1"},
        product_patterns=[ProductIndexRequest([r"\.csv$"], derived_from=["no-such-bundle"])],
    )
    record = job.index()
    assert record.state == "FAILED"
    assert record.error is not None and "no-such-bundle" in record.error
    assert record.error.startswith("indexing failed: InvalidIndexRequest")
    [index_job] = store.list_jobs(kind=INDEX_KIND, parent_job_id=job._uuid(), workspace=workspace)
    assert index_job.state == "FAILED" and "no-such-bundle" in (index_job.error or "")
    events = [e.event for e in store.list_events(job._uuid(), workspace=workspace)]
    assert events[-2:] == ["index", "fail"]


CRASHING_INDEXER = """
import os, sys
from assay.bundles.workspace import open_workspace
from assay.pjobs.events import apply_event
apply_event(open_workspace(), sys.argv[1], "index")
print("indexing finished before the kill", flush=True)
"""


def test_crash_mid_index_is_recovered(workspace: Workspace, pipeline: Pipeline) -> None:
    files = {f"d{i % 40}/f{i}.dat": os.urandom(64) for i in range(4000)}
    job = _finished_job(workspace, files)
    uuid = job._uuid()
    child = start_python(CRASHING_INDEXER, uuid)
    try:
        deadline = time.monotonic() + 60
        running = []
        while not running and time.monotonic() < deadline:  # wait for the indexing job to run
            running = store.list_jobs(kind=INDEX_KIND, state="RUNNING", workspace=workspace)
            time.sleep(0.005)  # poll interval only; the condition is the RUNNING row
        assert running, "the indexing job never started"
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
        out = child.stdout.read() if child.stdout else ""
    assert "finished before" not in out
    # the race happened: the managed job was left INDEXING by the dead process
    assert store.get_job(uuid, workspace=workspace).state == "INDEXING"
    assert recover(workspace) == [uuid]
    record = store.get_job(uuid, workspace=workspace)
    assert record.state == "FAILED"
    assert record.error is not None and "died" in record.error
    [index_job] = store.list_jobs(kind=INDEX_KIND, parent_job_id=uuid, workspace=workspace)
    assert index_job.state == "FAILED"
    assert recover(workspace) == []  # nothing left to settle


def test_index_in_the_wrong_state_makes_no_index_job(
    workspace: Workspace, pipeline: Pipeline
) -> None:
    job = ManagedPipelineJob(workspace, "sd2e/tacobot", measurement_id="m1").setup()
    with pytest.raises(Exception, match="cannot index a job that is CREATED"):
        job.index()
    assert store.list_jobs(kind=INDEX_KIND, workspace=workspace) == []
