"""Lineage and jobs over HTTP: the bounded graph, PROV-JSON, job pages, detail, stop, events."""

from __future__ import annotations

import uuid as uuid_module

from server_helpers import ApiServer, make_graph

from assay.jobs import store


def test_lineage_graph_and_prov_json(api: ApiServer) -> None:
    context = f"lin-{uuid_module.uuid4().hex[:8]}"
    uuids = make_graph(
        api.workspace,
        context,
        ["raw", "clean", "model", "report"],
        {"clean": ["raw"], "model": ["clean"], "report": ["model"]},
    )
    with api.client(api.reader) as client:
        graph = client.get(
            "/api/v1/lineage", params={"node": f"bundle:{uuids['model']}", "depth": 1}
        ).json()
        depths = {n["id"]: n["depth"] for n in graph["nodes"]}
        assert depths == {
            f"bundle:{uuids['model']}": 0,
            f"bundle:{uuids['clean']}": -1,
            f"bundle:{uuids['report']}": 1,
        }
        assert graph["truncated"] is True and graph["cut"]["by_depth"] is True
        prov = client.get(
            "/api/v1/lineage",
            params={"node": f"bundle:{uuids['report']}", "direction": "up", "format": "prov-json"},
        ).json()
        assert set(prov["entity"]) == {f"assay:{uuids[n]}" for n in uuids}
        assert prov["assay:truncated"] is False
        for params, field in (
            ({"node": "bundle:zzz"}, "node"),
            ({"node": f"bundle:{uuids['raw']}", "direction": "sideways"}, "direction"),
            ({"node": f"bundle:{uuids['raw']}", "max_nodes": 0}, "max_nodes"),
            ({"node": f"bundle:{uuids['raw']}", "depth": 1000}, "depth"),
        ):
            response = client.get("/api/v1/lineage", params=params)
            assert response.status_code == 422 and response.json()["field"] == field, params
        missing = client.get("/api/v1/lineage", params={"node": f"bundle:{uuid_module.uuid4()}"})
        assert missing.status_code == 404 and missing.json()["code"] == "bundle_not_found"


def _jobs(api: ApiServer, count: int, kind: str) -> list[str]:
    ids = []
    for _ in range(count):
        job_id = str(uuid_module.uuid4())
        store.create_job(kind, job_id, spec={"n": 1}, owner="ada", workspace=api.workspace)
        ids.append(job_id)
    return ids


def test_jobs_pages_detail_stop_and_events(api: ApiServer) -> None:
    kind = f"k{uuid_module.uuid4().hex[:6]}"
    ids = _jobs(api, 5, kind)
    with api.client(api.writer) as client:
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, object] = {"kind": kind, "limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = client.get("/api/v1/jobs", params=params).json()
            seen += [j["job_id"] for j in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == sorted(ids) and len(seen) == 5
        detail = client.get(f"/api/v1/jobs/{ids[0]}").json()
        assert detail["state"] == "CREATED" and detail["owner"] == "ada"
        stopped = client.post(f"/api/v1/jobs/{ids[0]}/stop").json()
        assert stopped["state"] == "STOPPED" and stopped["terminal"] is True
        again = client.post(f"/api/v1/jobs/{ids[0]}/stop")
        assert again.status_code == 409 and again.json()["code"] == "invalid_transition"
        events = client.get(f"/api/v1/jobs/{ids[0]}/events", params={"limit": 1}).json()
        assert [e["seq"] for e in events["items"]] == [1]
        rest = client.get(
            f"/api/v1/jobs/{ids[0]}/events", params={"cursor": events["next_cursor"]}
        ).json()
        assert rest["items"][-1]["to_state"] == "STOPPED" and rest["next_cursor"] is None
        missing = client.get(f"/api/v1/jobs/{uuid_module.uuid4()}")
        assert missing.status_code == 404 and missing.json()["code"] == "job_not_found"
        bad = client.get("/api/v1/jobs", params={"cursor": "bogus"})
        assert bad.status_code == 422 and bad.json()["field"] == "cursor"
    with api.client(api.reader) as client:
        refused = client.post(f"/api/v1/jobs/{ids[1]}/stop")
        assert refused.status_code == 403
        assert client.get(f"/api/v1/jobs/{ids[1]}").json()["state"] == "CREATED"


def test_environments(api: ApiServer) -> None:
    with api.client(api.reader) as client:
        items = client.get("/api/v1/environments").json()["items"]
    assert [e["id"] for e in items] == ["local"]  # the default: one free local environment
    assert items[0]["status"] == "ok" and items[0]["running"] == 0
