"""Files over HTTP under attack and failure: corrupted blobs are refused (never served), path
traversal is refused, an upload cut off mid-way makes no bundle."""

from __future__ import annotations

import http.client
import os
import socket
import stat
import time
import uuid as uuid_module
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from server_helpers import ApiServer

from assay.bundles import operations


def _bundle(api: ApiServer, content: bytes) -> tuple[str, str, str]:
    context = f"safe-{uuid_module.uuid4().hex[:8]}"
    with api.client(api.writer) as client:
        assert client.post("/api/v1/contexts", json={"name": context}).status_code == 201
        made = client.post(
            f"/api/v1/contexts/{context}/bundles",
            params={"name": "secret", "filename": "f.bin"},
            content=content,
            headers={"Content-Type": "application/octet-stream"},
        )
    assert made.status_code == 201, made.text
    uuid = made.json()["uuid"]
    with api.client(api.reader) as client:
        blob_hash = client.get(f"/api/v1/bundles/{uuid}/files").json()["items"][0]["blob_hash"]
    return context, uuid, blob_hash


def _blob_path(api: ApiServer, blob_hash: str) -> Path:
    return api.workspace.store.path_for(blob_hash)


@pytest.mark.parametrize("size", [1000, 9 * 1024 * 1024])  # small, and past the mmap threshold
def test_a_corrupted_blob_is_refused_not_served(api: ApiServer, size: int) -> None:
    content = os.urandom(size)
    _, uuid, blob_hash = _bundle(api, content)
    url = f"/api/v1/bundles/{uuid}/files/f.bin"
    with api.client(api.reader) as client:
        assert client.get(url).content == content  # served and remembered as verified
        blob = _blob_path(api, blob_hash)
        os.chmod(blob, stat.S_IWUSR | stat.S_IRUSR)
        with open(blob, "r+b") as handle:  # flip one byte in place, same size
            handle.seek(size // 2)
            original = handle.read(1)
            handle.seek(size // 2)
            handle.write(bytes([original[0] ^ 0xFF]))
        for headers in ({}, {"Range": "bytes=0-9"}):
            refused = client.get(url, headers=headers)
            assert refused.status_code == 500, refused.status_code
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["code"] == "blob_corrupted"
            assert content[:64] not in refused.content


def test_a_missing_blob_is_refused(api: ApiServer) -> None:
    _, uuid, blob_hash = _bundle(api, b"gone soon")
    os.remove(_blob_path(api, blob_hash))
    with api.client(api.reader) as client:
        response = client.get(f"/api/v1/bundles/{uuid}/files/f.bin")
    assert response.status_code == 500 and response.json()["code"] == "blob_missing"


def _raw_get(api: ApiServer, path: str) -> tuple[int, bytes]:
    """A request whose path is sent exactly as written (no client-side dot removal)."""
    address = urlparse(api.url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=60)
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        connection.putheader("Authorization", f"Bearer {api.reader}")
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize(
    "tail",
    [
        "../../../catalog.db",
        "..%2f..%2f..%2fcatalog.db",
        "%2e%2e/%2e%2e/catalog.db",
        "%2fetc%2fpasswd",
        "a/./b",
        "f.bin%00.txt",
        "..\\..\\catalog.db",
    ],
)
def test_path_traversal_is_refused(api: ApiServer, tail: str) -> None:
    _, uuid, _ = _bundle(api, b"payload")
    status, body = _raw_get(api, f"/api/v1/bundles/{uuid}/files/{tail}")
    assert status == 422, (status, body)
    assert b"SQLite format" not in body and b"root:" not in body
    assert b'"field":"path"' in body


def test_an_upload_cut_off_mid_way_makes_no_bundle(api: ApiServer) -> None:
    context, _, _ = _bundle(api, b"first")
    before = sorted(r.uuid for r in operations.search(api.workspace, context))
    uploads = api.home / "uploads"
    address = urlparse(api.url)
    sock = socket.create_connection((address.hostname, address.port), timeout=60)
    try:
        sock.sendall(
            (
                f"POST /api/v1/contexts/{context}/bundles?name=partial&filename=p.bin HTTP/1.1\r\n"
                f"Host: {address.hostname}\r\nAuthorization: Bearer {api.writer}\r\n"
                "Content-Type: application/octet-stream\r\nContent-Length: 10000000\r\n\r\n"
            ).encode()
            + b"x" * 200_000
        )
        # Wait (bounded) until the server is spooling this body, so the cut is mid-upload.
        _wait_for(lambda: any(p.is_dir() for p in uploads.glob("upload-*")))
    finally:
        sock.close()
    # The handler removes its folder when it ends; only then is "no bundle" a real answer.
    _wait_for(lambda: not any(uploads.glob("upload-*")))
    after = sorted(r.uuid for r in operations.search(api.workspace, context))
    assert after == before
    assert [r.name for r in operations.search(api.workspace, context)] == ["secret"]


def _wait_for(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def _upload_tar(api: ApiServer, files: dict[str, bytes]) -> httpx.Response:
    """Upload ``files`` as a tar (16 or more small files: stored in a pack) to a new context."""
    import io
    import tarfile

    body = io.BytesIO()
    with tarfile.open(fileobj=body, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context = f"packed-{uuid_module.uuid4().hex[:8]}"
    with api.client(api.writer) as client:
        assert client.post("/api/v1/contexts", json={"name": context}).status_code == 201
        return client.post(
            f"/api/v1/contexts/{context}/bundles",
            params={"name": "many"},
            content=body.getvalue(),
            headers={"Content-Type": "application/x-tar"},
        )


def test_files_of_a_packed_bundle_are_served_verified(api: ApiServer) -> None:
    """A tar of many small files is stored in a pack file (no loose blob): each file is still
    served, from a verified copy out of the pack, with Range."""
    files = {f"part-{i:02d}.txt": f"small file {i}\n".encode() * (i + 1) for i in range(20)}
    made = _upload_tar(api, files)
    assert made.status_code == 201, made.text
    uuid = made.json()["uuid"]
    with api.client(api.reader) as client:
        listed = client.get(f"/api/v1/bundles/{uuid}/files").json()["items"]
        blob_hash = next(f["blob_hash"] for f in listed if f["path"] == "part-07.txt")
        assert not _blob_path(api, blob_hash).exists()  # packed: the case under test
        for name, data in files.items():
            answer = client.get(f"/api/v1/bundles/{uuid}/files/{name}")
            assert answer.status_code == 200, answer.text
            assert answer.content == data
        part = client.get(
            f"/api/v1/bundles/{uuid}/files/part-07.txt", headers={"Range": "bytes=2-5"}
        )
        assert part.status_code == 206 and part.content == files["part-07.txt"][2:6]


def test_a_damaged_copy_of_a_packed_blob_is_made_again(api: ApiServer) -> None:
    files = {f"p{i:02d}.txt": f"packed {i}\n".encode() for i in range(20)}
    made = _upload_tar(api, files)
    uuid = made.json()["uuid"]
    url = f"/api/v1/bundles/{uuid}/files/p03.txt"
    with api.client(api.reader) as client:
        assert client.get(url).content == files["p03.txt"]
        blob_hash = client.get(url).headers["etag"].strip('"')
        copy = api.home / "serving" / blob_hash[:2] / blob_hash[2:]
        assert copy.exists()
        os.chmod(copy, stat.S_IWUSR | stat.S_IRUSR)
        copy.write_bytes(b"damaged" + files["p03.txt"][7:])  # same size, other bytes
        again = client.get(url)
    assert again.status_code == 200 and again.content == files["p03.txt"]
