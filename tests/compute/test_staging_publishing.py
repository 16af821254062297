"""Staging a job's working directory and publishing what it left, with a real algorithm process
run by hand between the two (the executor's part is tested in test_compute_jobs.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from compute_helpers import OCEAN_SCRIPT, add_dataset, make_service, raw_meta

from assay import api
from assay.bundles.workspace import open_workspace
from assay.computejobs import algorithms, lifecycle, publishing, staging
from assay.core.errors import InvalidInput, JobNotFound, NotJobOwner, ResultNotFound
from assay.jobs import store as job_store
from assay.jobs import workdir as jobdir


def _provision(
    consumer: str, datasets: list[Any], algorithm: algorithms.Algorithm, custom: Any = None
) -> tuple[str, Path, list[str], dict[str, str]]:
    workspace = open_workspace()
    inputs = lifecycle.resolve_inputs(workspace, datasets)
    job_id = lifecycle.job_identity(algorithm, inputs, custom, consumer, "local")
    spec = {
        "consumer": consumer,
        "algorithm": algorithm.describe(),
        "algorithm_bundle_uuid": algorithm.bundle.uuid if algorithm.bundle else None,
        "inputs": [{**item.describe(), "uuid": item.record.uuid} for item in inputs],
    }
    job_store.create_job("compute", job_id, spec=spec, owner=consumer)
    workdir = lifecycle.workdir_of(workspace, job_id)
    staging_dir = staging.staging_dir_of(workspace, job_id)
    staged = staging.stage_inputs(workspace, staging_dir, inputs, custom)
    workdir.mkdir(parents=True)
    algo_path = algorithms.stage_algorithm(workspace, algorithm, workdir)
    argv = algorithms.argv_for(algorithm, algo_path)
    env = staging.algorithm_environment(algorithm.ref.id, algo_path)
    job_store.fire(job_id, "provision")
    # the job layer's own layout, as its executor makes it for a job without a sandbox
    dirs, _binds = jobdir.prepare(workdir, staged, custom, copy_inputs=True)
    env = jobdir.job_environment(dirs, job_id, list(staged), env)
    return job_id, workdir, argv, env


def _run_and_publish(job_id: str, workdir: Path, argv: list[str], env: dict[str, str]) -> int:
    workspace = open_workspace()
    job_store.fire(job_id, "run")
    with open(workdir / "logs" / "algorithm.log", "wb") as log:
        code = subprocess.run(
            argv, cwd=workdir, env=env, stdout=log, stderr=log, check=False
        ).returncode
    if code == 0:
        job_store.fire(job_id, "publish")  # as the executor does before its on_exit hook
    lifecycle.publish_job(job_store.get_job(job_id), code, workdir, workspace)
    job_store.fire(job_id, "finish" if code == 0 else "fail")
    return code


def test_ocean_style_script_runs_unchanged_on_staged_inputs(
    assay_home: Path, tmp_path: Path
) -> None:
    main = add_dataset(tmp_path, "hospital", "notes", {"a.txt": "x\nwind\n", "d/b.txt": "wind"})
    extra = add_dataset(tmp_path, "hospital", "more", {"c.txt": "calm\n"})
    algorithm = algorithms.raw_algorithm(raw_meta(OCEAN_SCRIPT.read_text()))
    job_id, workdir, argv, env = _provision("alice", [main, extra], algorithm, {"word": "wind"})
    assert (workdir / "inputs/notes/d/b.txt").read_text() == "wind"
    assert (workdir / "inputs/more/c.txt").read_text() == "calm\n"  # additional: really staged
    assert json.loads((workdir / "inputs/algoCustomData.json").read_text()) == {"word": "wind"}
    assert json.loads(env["DIDS"]) == ["notes", "more"]

    assert _run_and_publish(job_id, workdir, argv, env) == 0
    summary = json.loads((workdir / "outputs/summary.json").read_text())
    assert summary["datasets"] == {
        "notes": {"lines": 3, "matches": 2},
        "more": {"lines": 1, "matches": 0},
    }
    assert not (workdir / "inputs").exists()  # staged copies are gone after publishing
    assert not staging.staging_dir_of(open_workspace(), job_id).exists()

    results = publishing.list_results(open_workspace(), job_id)
    assert [(r["index"], r["type"], r["filename"]) for r in results] == [
        (0, "output", "summary.json"),
        (1, "algorithmLog", "algorithm.log"),
        (2, "configurationLog", "configuration.log"),
        (3, "publishLog", "publish.log"),
    ]
    item, path = publishing.result_path(open_workspace(), job_id, 0)
    assert json.loads(path.read_text()) == summary and item["filesize"] == path.stat().st_size
    bundle = publishing.output_bundle(open_workspace(), job_id)
    assert bundle is not None and bundle.tags["job_outcome"] == "finished"
    assert bundle.tags["generated_by"] == f"raw#{algorithm.ref.code_hash[:16]}"
    assert {(d.kind, d.arg_name) for d in bundle.dependencies} == {
        ("acted_on", "notes"),
        ("acted_on", "more"),
    }
    upstream = {node.uuid for node in api.lineage("compute", bundle.uuid)}
    assert {main.split("@")[1], extra.split("@")[1]} <= upstream
    # the consumer's results hold outputs and logs, never an input file
    assert all(not r["path"].startswith("inputs/") for r in results)

    status = lifecycle.status_of(
        lifecycle.owned_job(job_id, "alice", open_workspace()), open_workspace()
    )
    assert status["ok"] and status["status"] == 70 and status["statusText"]
    assert [r["type"] for r in status["results"]] == [r["type"] for r in results]


def test_an_algorithm_that_writes_nothing_finishes_with_only_logs(
    assay_home: Path, tmp_path: Path
) -> None:
    main = add_dataset(tmp_path, "hospital", "notes", {"a.txt": "x\n"})
    algorithm = algorithms.raw_algorithm(raw_meta("print('nothing to say')\n"))
    job_id, workdir, argv, env = _provision("alice", [main], algorithm)
    assert _run_and_publish(job_id, workdir, argv, env) == 0
    results = publishing.list_results(open_workspace(), job_id)
    assert [r["type"] for r in results] == ["algorithmLog", "configurationLog", "publishLog"]
    _, publish_log = publishing.result_path(open_workspace(), job_id, 2)
    assert "outputs/ is empty: the algorithm wrote no output files" in publish_log.read_text()
    assert job_store.get_job(job_id).state == "FINISHED"


def test_a_crashing_algorithm_fails_with_its_logs_published(
    assay_home: Path, tmp_path: Path
) -> None:
    main = add_dataset(tmp_path, "hospital", "notes", {"a.txt": "x\n"})
    code = "import os\nopen(os.environ['OUTPUTS'] + '/half.txt', 'w').write('1')\nraise SystemExit('bad data')\n"
    algorithm = algorithms.raw_algorithm(raw_meta(code))
    job_id, workdir, argv, env = _provision("alice", [main], algorithm)
    assert _run_and_publish(job_id, workdir, argv, env) == 1
    status = lifecycle.status_of(job_store.get_job(job_id), open_workspace())
    assert status["ok"] is False and status["state"] == "FAILED"
    _, log = publishing.result_path(open_workspace(), job_id, 1)
    assert "bad data" in log.read_text()
    bundle = publishing.output_bundle(open_workspace(), job_id)
    assert bundle is not None and bundle.tags["job_outcome"] == "failed"


def test_links_in_outputs_are_not_followed(assay_home: Path, tmp_path: Path) -> None:
    main = add_dataset(tmp_path, "hospital", "notes", {"a.txt": "secret\n"})
    code = (
        "import os\n"
        "out = os.environ['OUTPUTS']\n"
        "os.symlink(os.path.join(os.environ['INPUTS'], 'notes', 'a.txt'), out + '/leak.txt')\n"
        "open(out + '/ok.txt', 'w').write('fine')\n"
    )
    algorithm = algorithms.raw_algorithm(raw_meta(code))
    job_id, workdir, argv, env = _provision("alice", [main], algorithm)
    assert _run_and_publish(job_id, workdir, argv, env) == 0
    results = publishing.list_results(open_workspace(), job_id)
    assert [r["filename"] for r in results if r["type"] == "output"] == ["ok.txt"]
    _, publish_log = publishing.result_path(open_workspace(), job_id, len(results) - 1)
    assert "skipped outputs/leak.txt: not a regular file" in publish_log.read_text()


def test_reading_someone_elses_job_or_a_bad_index(assay_home: Path, tmp_path: Path) -> None:
    main = add_dataset(tmp_path, "hospital", "notes", {"a.txt": "x\n"})
    algorithm = algorithms.raw_algorithm(raw_meta("pass\n"))
    job_id, workdir, argv, env = _provision("alice", [main], algorithm)
    _run_and_publish(job_id, workdir, argv, env)
    workspace = open_workspace()
    with pytest.raises(NotJobOwner, match="another consumer"):
        lifecycle.owned_job(job_id, "mallory", workspace)
    with pytest.raises(JobNotFound):
        lifecycle.owned_job("00000000-0000-0000-0000-000000000000", "alice", workspace)
    with pytest.raises(ResultNotFound, match=r"valid indexes are 0\.\.2"):
        publishing.result_path(workspace, job_id, 3)
    with pytest.raises(ResultNotFound):
        publishing.result_path(workspace, job_id, -1)
    assert len(publishing.list_results(workspace, job_id)) == 3  # nothing changed


def test_dataset_keys_and_bad_algorithm_meta(assay_home: Path, tmp_path: Path) -> None:
    assert staging.unique_keys([None, None, "x"], ["a", "a", "b"]) == ["a", "a-2", "x"]
    with pytest.raises(InvalidInput, match="two datasets"):
        staging.unique_keys(["k", "k"], ["a", "b"])
    with pytest.raises(InvalidInput, match="reserved"):
        staging.unique_keys(["algoCustomData.json"], ["a"])
    with pytest.raises(InvalidInput, match="rawcode"):
        algorithms.raw_algorithm({"meta": {"language": "python"}})
    with pytest.raises(InvalidInput, match="not fetched"):
        algorithms.raw_algorithm({"url": "https://example.com/algo.py"})
    one = algorithms.raw_algorithm(raw_meta("print(1)\n"))
    assert one.ref.code_hash == algorithms.raw_algorithm(raw_meta("print(1)\n")).ref.code_hash
    assert one.ref.code_hash != algorithms.raw_algorithm(raw_meta("print(2)\n")).ref.code_hash


def test_a_registered_service_runs_as_the_algorithm(assay_home: Path, tmp_path: Path) -> None:
    main = add_dataset(tmp_path, "hospital", "notes", {"a.txt": "1", "b.txt": "2"})
    extra = add_dataset(tmp_path, "hospital", "more", {"c.txt": "3"})
    make_service(tmp_path / "services")
    algorithm = algorithms.resolve_algorithm(open_workspace(), "lab/counter:1.0.0", None)
    assert algorithm.ref.kind == "service" and algorithm.ref.publisher == "lab"
    job_id, workdir, argv, env = _provision("alice", [main, extra], algorithm, {"n": 1})
    assert _run_and_publish(job_id, workdir, argv, env) == 0, (
        workdir / "logs/algorithm.log"
    ).read_text()
    _, path = publishing.result_path(open_workspace(), job_id, 0)
    assert json.loads(path.read_text()) == {"counts": {"notes": 2, "more": 1}, "values": {"n": 1}}
    bundle = publishing.output_bundle(open_workspace(), job_id)
    assert bundle is not None
    assert bundle.tags["generated_by"] == f"lab/counter:1.0.0#{algorithm.ref.code_hash[:16]}"


def test_an_algorithm_bundle_runs_and_is_linked(assay_home: Path, tmp_path: Path) -> None:
    main = add_dataset(tmp_path, "hospital", "notes", {"a.txt": "x\ny\n"})
    add_dataset(tmp_path, "algos", "ocean-count", {"count.py": OCEAN_SCRIPT.read_text()})
    algorithm = algorithms.resolve_algorithm(open_workspace(), "assay://algos/ocean-count", None)
    assert algorithm.ref.id == "assay://algos/ocean-count"
    assert algorithm.ref.code_hash == algorithm.bundle.content_hash  # type: ignore[union-attr]
    job_id, workdir, argv, env = _provision("alice", [main], algorithm)
    assert _run_and_publish(job_id, workdir, argv, env) == 0
    bundle = publishing.output_bundle(open_workspace(), job_id)
    assert bundle is not None
    assert ("acted_using", "algorithm") in {(d.kind, d.arg_name) for d in bundle.dependencies}
    with pytest.raises(InvalidInput, match="exactly one"):
        algorithms.resolve_algorithm(open_workspace(), None, None)
