"""Pipelines over HTTP: plan and apply ``module:Task`` (imported by the server process), read
runs with per-task state; managed pipeline jobs' read routes. Real uvicorn, SQLite and
PostgreSQL."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_helpers import ApiServer, running_server
from sqlalchemy import func, select

from assay.bundles import operations
from assay.bundles.workspace import close_workspaces
from assay.catalog.schema import bundles, jobs
from assay.jobs import store as job_store
from helpers import POSTGRES_ADMIN_URL, skip_or_fail, temporary_postgres_database

MODULE = """
from assay.pipe import IntParameter, Parameter, PipeTask


class Numbers(PipeTask):
    n = IntParameter(default=3)

    def pipe_run(self):
        return list(range(self.n))


class Total(PipeTask):
    n = IntParameter(default=3)

    def pipe_requires(self):
        self.add_dependency("numbers", Numbers, {"n": self.n})

    def pipe_run(self, numbers=None):
        return sum(numbers)


class Broken(PipeTask):
    def pipe_run(self):
        raise RuntimeError("broken on purpose")


class Gate(PipeTask):
    release = Parameter()

    def pipe_run(self):
        import os, time
        while not os.path.exists(self.release):  # the test creates it when it is ready
            time.sleep(0.02)
        return "released"


class Missing(PipeTask):
    def pipe_requires(self):
        self.add_external_dependency("raw", "no_such_bundle", {})

    def pipe_run(self, raw=None):
        return 1
"""


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def papi(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """A server whose PYTHONPATH holds the pipeline module ``http_pipes``."""
    root = tmp_path_factory.mktemp("pipes")
    (root / "code").mkdir()
    (root / "code" / "http_pipes.py").write_text(textwrap.dedent(MODULE))
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(root / "code")
    os.environ["ASSAY_SERVER_PIPELINE_MODULES"] = "http_pipes"
    try:
        if request.param == "sqlite":
            with running_server(root / "home", None) as server:
                yield server
        else:
            try:
                with (
                    temporary_postgres_database(POSTGRES_ADMIN_URL, "assay_pipes") as url,
                    running_server(root / "home", url) as server,
                ):
                    yield server
            except ConnectionError as exc:
                skip_or_fail(str(exc))
    finally:
        os.environ.pop("ASSAY_SERVER_PIPELINE_MODULES", None)
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old
        close_workspaces()


def _counts(api: ApiServer) -> tuple[int, int]:
    with api.workspace.read() as conn:
        return (
            int(conn.execute(select(func.count()).select_from(jobs)).scalar_one()),
            int(conn.execute(select(func.count()).select_from(bundles)).scalar_one()),
        )


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, object] = response.json()
    assert body["code"] == code, body
    return body


def test_plan_apply_and_run_detail(papi: ApiServer) -> None:
    ada = papi.client(papi.writer)
    assert ada.post("/api/v1/contexts", json={"name": "pipes"}).status_code == 201
    body = {"context": "pipes", "task": "http_pipes:Total", "params": {"n": "4"}}
    plan = ada.post("/api/v1/pipelines/plan", json=body)
    assert plan.status_code == 200, plan.text
    assert [r["action"] for r in plan.json()["plan"]] == ["run", "run"]
    assert _counts(papi)[1] == 0  # planning wrote nothing
    applied = ada.post("/api/v1/pipelines/apply", json=body)
    assert applied.status_code == 202, applied.text
    job_id = applied.json()["job_id"]
    record = job_store.wait_terminal(job_id, timeout=120, workspace=papi.workspace)
    assert record.state == "FINISHED", record.error
    detail = ada.get(f"/api/v1/pipelines/{job_id}").json()
    assert detail["owner"] == "ada" and detail["kind"] == "pipeline"
    assert detail["result"]["success"] is True
    assert len(detail["tasks"]) == 2 and detail["task_states"] == {"FINISHED": 2}
    assert operations.get(papi.workspace, "pipes", "Total").data == 6
    # every write records who asked: the bundles and the task jobs are the token's user's
    assert operations.get(papi.workspace, "pipes", "Total").owner == "ada"
    assert operations.get(papi.workspace, "pipes", "Numbers").owner == "ada"
    assert {t["owner"] for t in detail["tasks"]} == {"ada"}
    # a second plan: everything cached
    assert [r["action"] for r in ada.post("/api/v1/pipelines/plan", json=body).json()["plan"]] == [
        "cached",
        "cached",
    ]
    assert job_id in [j["job_id"] for j in ada.get("/api/v1/pipelines").json()["items"]]
    # a failing task: the run ends FAILED, its task FAILED, nothing half-written
    broken = ada.post(
        "/api/v1/pipelines/apply", json={"context": "pipes", "task": "http_pipes:Broken"}
    )
    assert broken.status_code == 202
    failed = job_store.wait_terminal(broken.json()["job_id"], timeout=120, workspace=papi.workspace)
    assert failed.state == "FAILED" and "broken on purpose" in (failed.error or "")
    states = ada.get(f"/api/v1/pipelines/{failed.job_id}").json()["task_states"]
    assert states == {"FAILED": 1}
    assert operations.get(papi.workspace, "pipes", "Total").data == 6  # the good one kept


def test_bad_pipeline_input_starts_nothing(papi: ApiServer) -> None:
    ada = papi.client(papi.writer)
    ada.post("/api/v1/contexts", json={"name": "pipes"})
    before = _counts(papi)
    good = {"context": "pipes", "task": "http_pipes:Total"}
    for route in ("/api/v1/pipelines/plan", "/api/v1/pipelines/apply"):
        body = _problem(ada.post(route, json={**good, "task": "os:X"}), 422, "task_import_failed")
        assert "http_pipes" in str(body["detail"])  # not imported: outside the allowed packages
        _problem(
            ada.post(route, json={**good, "task": "http_pipes_x:X"}), 422, "task_import_failed"
        )
        _problem(
            ada.post(route, json={**good, "task": "http_pipes.nope:X"}), 422, "task_import_failed"
        )
        _problem(
            ada.post(route, json={**good, "task": "http_pipes:Nope"}), 422, "task_import_failed"
        )
        _problem(ada.post(route, json={**good, "params": {"m": 1}}), 422, "invalid_parameter")
        _problem(ada.post(route, json={**good, "params": {"n": "x"}}), 422, "invalid_parameter")
        _problem(ada.post(route, json={**good, "context": "nope"}), 404, "context_not_found")
        body = _problem(ada.post(route, json={**good, "workers": 0}), 422, "invalid_input")
        assert body["field"] == "workers"
        _problem(
            ada.post(route, content=b"[", headers={"content-type": "application/json"}),
            422,
            "invalid_input",
        )
        _problem(
            ada.post(route, json={**good, "task": "http_pipes:Missing"}),
            404,
            "external_bundle_not_found",
        )
    _problem(
        ada.post("/api/v1/pipelines/apply", json={**good, "environment": "mars"}),
        404,
        "environment_not_found",
    )
    _problem(
        papi.client(papi.reader).post("/api/v1/pipelines/apply", json=good),
        403,
        "insufficient_scope",
    )
    _problem(httpx.post(papi.url + "/api/v1/pipelines/plan", json=good), 401, "token_invalid")
    assert _counts(papi) == before  # no job, no bundle
    _problem(ada.get("/api/v1/pipelines/ffffffffffffffff"), 404, "job_not_found")


def test_managed_pipeline_job_reads(papi: ApiServer) -> None:
    ada = papi.client(papi.reader)
    assert ada.get("/api/v1/pipelinejobs").json() == {"items": [], "next_cursor": None}
    _problem(ada.get("/api/v1/pipelinejobs/0bad"), 404, "pipelinejob_not_found")
    _problem(ada.get("/api/v1/pipelinejobs?state=NOPE"), 422, "invalid_input")


def test_the_same_run_twice_while_active_is_409(papi: ApiServer, tmp_path: Path) -> None:
    ada = papi.client(papi.writer)
    ada.post("/api/v1/contexts", json={"name": "pipes"})
    release = tmp_path / "release"
    body = {"context": "pipes", "task": "http_pipes:Gate", "params": {"release": str(release)}}
    first = ada.post("/api/v1/pipelines/apply", json=body)
    assert first.status_code == 202, first.text
    job_id = first.json()["job_id"]
    # the run is recorded and blocked on the gate: the same run again is refused
    _problem(ada.post("/api/v1/pipelines/apply", json=body), 409, "invalid_transition")
    running = ada.get(f"/api/v1/pipelines/{job_id}").json()
    assert not running["terminal"]
    release.touch()
    done = job_store.wait_terminal(job_id, timeout=120, workspace=papi.workspace)
    assert done.state == "FINISHED"
    assert ada.get(f"/api/v1/pipelines/{job_id}").json()["task_states"] == {"FINISHED": 1}
