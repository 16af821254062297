"""Compute-to-data over HTTP: ``/api/v1/compute`` and the Ocean-shaped ``/api/services``
routes, against a real uvicorn (SQLite and PostgreSQL) running real sandboxed jobs."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from server_helpers import ApiServer
from sqlalchemy import func, select

from assay import api as assay_api
from assay.auth import tokens
from assay.bundles.workspace import close_workspaces
from assay.catalog.schema import jobs
from assay.jobs import store as job_store
from assay.jobs.policies import publish

ENVIRONMENTS = """\
environments:
  - id: sandboxed
    isolation: sandbox
    network: false
    max_jobs: 2
"""

COUNTER = """
import json, os
from pathlib import Path
inputs = Path(os.environ.get("INPUTS", "/data/inputs"))
outputs = Path(os.environ.get("OUTPUTS", "/data/outputs"))
custom = inputs / "algoCustomData.json"
word = json.loads(custom.read_text()).get("word", "") if custom.exists() else ""
lines = [l for p in sorted(inputs.rglob("*.txt")) for l in p.read_text().splitlines()]
(outputs / "summary.json").write_text(json.dumps({"lines": len(lines),
    "matches": sum(word in l for l in lines) if word else 0}))
print("counted", len(lines))
"""

FOREVER = """
import time
print("started", flush=True)
while True:
    time.sleep(0.05)
"""


def meta(code: str) -> dict[str, object]:
    return {
        "meta": {
            "rawcode": textwrap.dedent(code),
            "language": "python",
            "container": {"entrypoint": "python $ALGO", "image": "", "tag": ""},
        }
    }


@pytest.fixture
def c2d(
    api: ApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """The server's home as this process's ASSAY_HOME, an environment, a compute-only dataset
    (raw algorithms allowed, ``mallory`` denied), tokens for two more consumers."""
    monkeypatch.setenv("ASSAY_HOME", str(api.home))
    if not api.settings.catalog_url.startswith("sqlite"):
        monkeypatch.setenv("ASSAY_CATALOG_URL", api.settings.catalog_url)
    (api.home / "environments.yaml").write_text(ENVIRONMENTS)
    name = f"notes{tmp_path.name[-12:].replace('_', '')}".lower()
    folder = tmp_path / "notes"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("wind\ncalm\n")
    (folder / "sub" / "b.txt").write_text("wind\n")
    assay_api.context("hospital")
    record = assay_api.add("hospital", name, str(folder))
    publish("hospital", name, "compute", allow_raw_algorithm=True, deny_consumers=["mallory"])
    made = {
        user: tokens.create_token(user, ["write"], workspace=api.workspace)[1]
        for user in ("carol", "mallory")
    }
    yield {"dataset": f"assay://hospital/{name}@{record.uuid}", "uuid": record.uuid, **made}
    close_workspaces()


def _job_count(api: ApiServer) -> int:
    with api.workspace.read() as conn:
        return int(conn.execute(select(func.count()).select_from(jobs)).scalar_one())


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, object] = response.json()
    assert body["code"] == code, body
    return body


def test_start_status_results_and_another_consumer_refused(
    api: ApiServer, c2d: dict[str, str]
) -> None:
    ada, carol = api.client(api.writer), api.client(c2d["carol"])
    started = ada.post(
        "/api/v1/compute/jobs",
        json={
            "dataset": c2d["dataset"],
            "environment": "sandboxed",
            "algorithm_meta": meta(COUNTER),
            "algocustomdata": {"word": "wind"},
        },
    )
    assert started.status_code == 201, started.text
    job_id = started.json()["jobId"]
    assert started.json()["owner"] == "ada"  # the token's user is the consumer
    assert job_store.wait_terminal(job_id, timeout=120, workspace=api.workspace).state == (
        "FINISHED"
    ), ada.get(f"/api/v1/compute/jobs/{job_id}").text
    status = ada.get(f"/api/v1/compute/jobs/{job_id}").json()
    assert status["ok"] is True and status["state"] == "FINISHED"
    results = ada.get(f"/api/v1/compute/jobs/{job_id}/results").json()["items"]
    output = next(r for r in results if r["filename"] == "summary.json")
    got = ada.get(f"/api/v1/compute/jobs/{job_id}/results/{output['index']}")
    assert got.status_code == 200
    assert json.loads(got.content) == {"lines": 3, "matches": 2}

    # another consumer: status, results, result bytes, stop -> 403 with the code
    for response in (
        carol.get(f"/api/v1/compute/jobs/{job_id}"),
        carol.get(f"/api/v1/compute/jobs/{job_id}/results"),
        carol.get(f"/api/v1/compute/jobs/{job_id}/results/{output['index']}"),
        carol.post(f"/api/v1/compute/jobs/{job_id}/stop"),
        carol.get("/api/services/compute", params={"jobId": job_id}),
        carol.get("/api/services/computeResult", params={"jobId": job_id, "index": 0}),
    ):
        _problem(response, 403, "not_job_owner")
    # ... nor through the generic bundle routes: the output bundle is the consumer's only
    bundle = status["outputBundle"].rsplit("@", 1)[1]
    path = next(
        f["path"]
        for f in ada.get(f"/api/v1/bundles/{bundle}/files").json()["items"]
        if f["path"].endswith("summary.json")
    )
    _problem(carol.get(f"/api/v1/bundles/{bundle}/files/{path}"), 403, "not_job_owner")
    assert ada.get(f"/api/v1/bundles/{bundle}/files/{path}").content == got.content
    # the compute-only dataset's bytes never leave, for anyone
    for client in (ada, carol, api.client(api.admin)):
        _problem(client.get(f"/api/v1/bundles/{c2d['uuid']}/files/a.txt"), 403, "not_consumable")
    # carol's own list does not show ada's job
    assert job_id not in [j["jobId"] for j in carol.get("/api/v1/compute/jobs").json()["items"]]
    assert job_id in [j["jobId"] for j in ada.get("/api/v1/compute/jobs").json()["items"]]


def test_ocean_shaped_routes(api: ApiServer, c2d: dict[str, str]) -> None:
    ada = api.client(api.writer)
    root = ada.get("/api/services").json()["serviceEndpoints"]
    assert root["computeStart"] == ["POST", "/api/services/compute"]
    envs = ada.get("/api/services/computeEnvironments", params={"chainId": 8996}).json()
    assert [e["id"] for e in envs["8996"]] == ["sandboxed"]
    assert envs["8996"][0]["priceMin"] == 0
    payload = {
        "dataset": {"documentId": c2d["dataset"], "serviceId": "0", "transferTxId": "0x1"},
        "environment": "sandboxed",
        "algorithm": meta(COUNTER),
        "consumerAddress": "ada",
        "signature": "ignored",
        "nonce": "1",
        "additionalInputs": [],
    }
    started = ada.post("/api/services/compute", json=payload)
    assert started.status_code == 200, started.text
    assert isinstance(started.json(), list)
    job_id = started.json()[0]["jobId"]
    job_store.wait_terminal(job_id, timeout=120, workspace=api.workspace)
    [status] = ada.get(
        "/api/services/compute", params={"jobId": job_id, "consumerAddress": "ada"}
    ).json()
    assert status["status"] == 70 and status["ok"] is True, status  # Ocean: 70 = finished
    index = next(r["index"] for r in status["results"] if r["filename"] == "summary.json")
    data = ada.get("/api/services/computeResult", params={"jobId": job_id, "index": index})
    assert json.loads(data.content) == {"lines": 3, "matches": 0}
    assert job_id in [s["jobId"] for s in ada.get("/api/services/compute").json()]
    # stopping a finished job: 409, the job unchanged
    _problem(ada.put("/api/services/compute", params={"jobId": job_id}), 409, "invalid_transition")
    assert job_store.get_job(job_id, workspace=api.workspace).state == "FINISHED"
    # a consumerAddress that is not the token's user
    _problem(
        ada.post("/api/services/compute", json={**payload, "consumerAddress": "carol"}),
        403,
        "not_job_owner",
    )
    _problem(
        ada.get("/api/services/compute", params={"jobId": job_id, "consumerAddress": "x"}),
        403,
        "not_job_owner",
    )


def test_stop_a_running_job_over_http(api: ApiServer, c2d: dict[str, str]) -> None:
    ada = api.client(api.writer)
    started = ada.post(
        "/api/v1/compute/jobs",
        json={
            "dataset": c2d["dataset"],
            "environment": "sandboxed",
            "algorithm_meta": meta(FOREVER),
        },
    )
    job_id = started.json()["jobId"]
    stopped = ada.post(f"/api/v1/compute/jobs/{job_id}/stop")
    assert stopped.status_code == 200 and stopped.json()["stopRequested"] is True
    record = job_store.wait_terminal(job_id, timeout=120, workspace=api.workspace)
    assert record.state == "STOPPED"
    _problem(ada.post(f"/api/v1/compute/jobs/{job_id}/stop"), 409, "invalid_transition")


def test_bad_input_is_refused_and_starts_nothing(api: ApiServer, c2d: dict[str, str]) -> None:
    ada = api.client(api.writer)
    before = _job_count(api)
    good = {"dataset": c2d["dataset"], "environment": "sandboxed", "algorithm_meta": meta(COUNTER)}
    url = "/api/v1/compute/jobs"
    _problem(httpx.post(api.url + url, json=good), 401, "token_invalid")
    _problem(api.client(api.reader).post(url, json=good), 403, "insufficient_scope")
    body = _problem(ada.post(url, json={**good, "environment": None}), 422, "invalid_input")
    assert body["field"] == "environment"
    _problem(ada.post(url, json={**good, "environment": "nowhere"}), 404, "environment_not_found")
    body = _problem(ada.post(url, json={**good, "algorithm": "lab/x:1"}), 422, "invalid_input")
    assert body["field"] == "algorithm"
    _problem(
        ada.post(url, json={k: v for k, v in good.items() if k != "algorithm_meta"}),
        422,
        "invalid_input",
    )
    _problem(
        ada.post(url, content=b"{not json", headers={"content-type": "application/json"}),
        422,
        "invalid_input",
    )
    _problem(
        ada.post(url, json={**good, "dataset": "assay://hospital/nothing"}), 404, "bundle_not_found"
    )
    # the dataset's policy refuses mallory: 403 with the consumability code
    body = _problem(api.client(c2d["mallory"]).post(url, json=good), 403, "not_consumable")
    assert body["consumable_code"] == "IN_DENY_LIST"
    ocean = "/api/services/compute"
    for broken in ({"environment": "sandboxed"}, {**good, "dataset": {"documentId": 7}}):
        _problem(ada.post(ocean, json=broken), 422, "invalid_input")
    _problem(
        ada.post(
            ocean,
            json={
                "dataset": {"documentId": c2d["dataset"]},
                "environment": "sandboxed",
                "algorithm": {},
            },
        ),
        422,
        "invalid_input",
    )
    assert _job_count(api) == before  # nothing was started by any of these
    # unknown ids and indexes
    _problem(ada.get("/api/v1/compute/jobs/ffffffffffff"), 404, "job_not_found")
    _problem(
        ada.get("/api/services/computeResult", params={"jobId": "ffffffffffff", "index": 0}),
        404,
        "job_not_found",
    )
    _problem(
        ada.get("/api/services/computeResult", params={"jobId": "x", "index": -1}),
        422,
        "invalid_input",
    )
    # the dataset is intact after all of it
    assert (
        assay_api.get("hospital", c2d["dataset"].split("/")[-1].split("@")[0]).uuid == c2d["uuid"]
    )


def test_pipelines_over_http_are_off_unless_modules_are_allowed(api: ApiServer) -> None:
    """This server was started without ASSAY_SERVER_PIPELINE_MODULES: no module is imported."""
    ada = api.client(api.writer)
    for route in ("/api/v1/pipelines/plan", "/api/v1/pipelines/apply"):
        body = _problem(
            ada.post(route, json={"context": "hospital", "task": "antigravity:X"}),
            422,
            "task_import_failed",
        )
        assert "ASSAY_SERVER_PIPELINE_MODULES" in str(body["detail"])
