"""Bundles over HTTP: contexts, upload (file, tar, JSON), list/search with cursors, detail,
versions, files, download with Range, commit, tags; bad input refused with nothing written."""

from __future__ import annotations

import io
import tarfile
import uuid as uuid_module
from typing import Any

import pytest
from server_helpers import ApiServer

from assay.bundles import operations


def _context(api: ApiServer) -> str:
    name = f"lab-{uuid_module.uuid4().hex[:8]}"
    with api.client(api.writer) as client:
        response = client.post("/api/v1/contexts", json={"name": name})
    assert response.status_code == 201, response.text
    return name


def _upload_file(api: ApiServer, context: str, name: str, content: bytes, **params: Any) -> Any:
    with api.client(api.writer) as client:
        return client.post(
            f"/api/v1/contexts/{context}/bundles",
            params={"name": name, "filename": "data.bin", **params},
            content=content,
            headers={"Content-Type": "application/octet-stream"},
        )


def _tar(files: dict[str, bytes], extra: list[tarfile.TarInfo] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, content in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        for info in extra or []:
            tar.addfile(info)
    return buffer.getvalue()


def _bundles(api: ApiServer, context: str) -> list[str]:
    return [r.uuid for r in operations.search(api.workspace, context)]


def test_upload_a_file_then_read_it_back(api: ApiServer) -> None:
    context = _context(api)
    content = bytes(range(256)) * 40
    response = _upload_file(api, context, "raw", content, tag=["stage=raw"])
    assert response.status_code == 201, response.text
    bundle = response.json()
    assert bundle["owner"] == "ada"  # who made it: the token's user
    assert bundle["tags"] == {"stage": "raw"} and bundle["file_count"] == 1
    with api.client(api.reader) as client:
        detail = client.get(f"/api/v1/bundles/{bundle['uuid']}").json()
        assert [f["path"] for f in detail["files"]] == ["data.bin"]
        files = client.get(f"/api/v1/bundles/{bundle['uuid']}/files").json()["items"]
        assert files[0]["size"] == len(content)
        url = f"/api/v1/bundles/{bundle['uuid']}/files/data.bin"
        full = client.get(url)
        assert full.status_code == 200 and full.content == content
        assert full.headers["etag"] == f'"{files[0]["blob_hash"]}"'
        part = client.get(url, headers={"Range": "bytes=10-19"})
        assert part.status_code == 206 and part.content == content[10:20]
        assert part.headers["content-range"] == f"bytes 10-19/{len(content)}"
        tail = client.get(url, headers={"Range": "bytes=-5"})
        assert tail.status_code == 206 and tail.content == content[-5:]
        beyond = client.get(url, headers={"Range": f"bytes={len(content) + 10}-"})
        assert beyond.status_code == 416


def test_upload_a_tar_and_json(api: ApiServer) -> None:
    context = _context(api)
    with api.client(api.writer) as client:
        made = client.post(
            f"/api/v1/contexts/{context}/bundles",
            params={"name": "tree"},
            content=_tar({"a.txt": b"alpha", "sub/b.txt": b"beta"}),
            headers={"Content-Type": "application/x-tar"},
        )
        assert made.status_code == 201, made.text
        uuid = made.json()["uuid"]
        assert client.get(f"/api/v1/bundles/{uuid}/files/sub/b.txt").content == b"beta"
        document = client.post(
            f"/api/v1/contexts/{context}/bundles",
            params={"name": "params"},
            json={"alpha": 0.5, "names": ["x", "y"]},
        )
        assert document.status_code == 201, document.text
        detail = client.get(f"/api/v1/bundles/{document.json()['uuid']}").json()
    assert detail["data"] == {"alpha": 0.5, "names": ["x", "y"]}


def test_list_search_and_page_through_bundles(api: ApiServer) -> None:
    context = _context(api)
    for i in range(7):
        tag = "even" if i % 2 == 0 else "odd"
        assert (
            _upload_file(api, context, f"run{i}", f"{i}".encode(), tag=[f"k={tag}"]).status_code
            == 201
        )
    with api.client(api.reader) as client:
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": 3}
            if cursor:
                params["cursor"] = cursor
            page = client.get(f"/api/v1/contexts/{context}/bundles", params=params).json()
            seen += [b["name"] for b in page["items"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == 3 and seen == [f"run{i}" for i in reversed(range(7))]
        even = client.get(
            f"/api/v1/contexts/{context}/bundles", params={"tag": "k=even", "name": "run*"}
        ).json()["items"]
        assert sorted(b["name"] for b in even) == ["run0", "run2", "run4", "run6"]


def test_versions_commit_and_tags(api: ApiServer) -> None:
    context = _context(api)
    first = _upload_file(api, context, "model", b"v1").json()
    second = _upload_file(api, context, "model", b"v2").json()
    with api.client(api.writer) as client:
        versions = client.get(f"/api/v1/bundles/{first['uuid']}/versions").json()["items"]
        assert [v["uuid"] for v in versions] == [second["uuid"], first["uuid"]]
        committed = client.post(f"/api/v1/bundles/{first['uuid']}/commit").json()
        assert committed["committed"] is True
        tagged = client.post(
            f"/api/v1/bundles/{first['uuid']}/tags", json={"tags": {"reviewed": "yes"}}
        ).json()
        assert tagged["tags"] == {"reviewed": "yes"}


@pytest.mark.parametrize(
    ("params", "body", "content_type", "field"),
    [
        ({"name": "bad name"}, b"x", "application/octet-stream", None),
        ({"name": "ok"}, b"x", "application/octet-stream", "filename"),
        ({"name": "ok", "filename": "../x"}, b"x", "application/octet-stream", "filename"),
        ({"name": "ok"}, b"x", "text/plain", "content-type"),
        ({"name": "ok"}, b"{not json", "application/json", "body"),
        ({"name": "ok"}, b"not a tar at all", "application/x-tar", "body"),
        ({"name": "ok", "tag": "Bad Key=1"}, b"{}", "application/json", "tag"),
        ({}, b"{}", "application/json", "name"),
    ],
)
def test_bad_uploads_are_422_and_make_nothing(
    api: ApiServer, params: dict[str, str], body: bytes, content_type: str, field: str | None
) -> None:
    context = _context(api)
    with api.client(api.writer) as client:
        response = client.post(
            f"/api/v1/contexts/{context}/bundles",
            params=params,
            content=body,
            headers={"Content-Type": content_type},
        )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"].startswith("invalid")
    if field is not None:
        assert problem["field"] == field
    assert _bundles(api, context) == []
    assert list((api.home / "uploads").glob("upload-*")) == []


@pytest.mark.parametrize(
    "member",
    ["../escape.txt", "/etc/evil", "a/../../b", "link"],
)
def test_unsafe_tar_members_are_refused_before_anything_is_stored(
    api: ApiServer, member: str
) -> None:
    context = _context(api)
    extra: list[tarfile.TarInfo] = []
    files = {"good.txt": b"fine"}
    if member == "link":
        link = tarfile.TarInfo("link")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        extra.append(link)
    else:
        files[member] = b"evil"
    with api.client(api.writer) as client:
        response = client.post(
            f"/api/v1/contexts/{context}/bundles",
            params={"name": "t"},
            content=_tar(files, extra),
            headers={"Content-Type": "application/x-tar"},
        )
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "body"
    assert _bundles(api, context) == []
    assert not (api.home.parent / "escape.txt").exists()


def test_unknown_ids_are_404_with_codes(api: ApiServer) -> None:
    missing = str(uuid_module.uuid4())
    with api.client(api.reader) as client:
        response = client.get(f"/api/v1/bundles/{missing}")
        assert response.status_code == 404 and response.json()["code"] == "bundle_not_found"
        response = client.get("/api/v1/contexts/nowhere/bundles")
        assert response.status_code == 404 and response.json()["code"] == "context_not_found"
        assert client.get("/api/v1/no/such/route").status_code == 404


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/contexts/{ctx}/bundles?limit=0", "limit"),
        ("/api/v1/contexts/{ctx}/bundles?limit=abc", "limit"),
        ("/api/v1/contexts/{ctx}/bundles?cursor=!!!", "cursor"),
        ("/api/v1/contexts/{ctx}/bundles?before=yesterday-ish", None),
        ("/api/v1/bundles/not-a-uuid", "uuid"),
    ],
)
def test_malformed_params_are_422_naming_the_field(
    api: ApiServer, url: str, field: str | None
) -> None:
    context = _context(api)
    with api.client(api.reader) as client:
        response = client.get(url.replace("{ctx}", context))
    assert response.status_code == 422, response.text
    if field is not None:
        assert response.json()["field"] == field


def test_malformed_json_bodies_are_422(api: ApiServer) -> None:
    context = _context(api)
    uuid = _upload_file(api, context, "x", b"1").json()["uuid"]
    with api.client(api.writer) as client:
        response = client.post(
            f"/api/v1/bundles/{uuid}/tags",
            content=b"{oops",
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 422
        response = client.post(f"/api/v1/bundles/{uuid}/tags", json={"tags": {"Bad Key": "1"}})
        assert response.status_code == 422 and response.json()["code"] == "invalid_tag"
        response = client.post("/api/v1/contexts", json={"nam": "x"})
        assert response.status_code == 422 and response.json()["field"] == "name"
    assert operations.search(api.workspace, context)[0].tags == {}
