"""The team deployment of docs/server.md, run as written: one catalog on PostgreSQL, blobs on
S3 (moto_server), machines with their own ASSAY_HOME (their own local store), and the server
in front with yet another ASSAY_HOME.

Machine A adds and pushes bundles with the ``assay`` CLI; the server, whose store has none of
their blobs, lists them and serves their files: fetched from the context's remote by content
hash, verified, kept in its store, with Range. A corrupted remote object is refused; a bundle
never pushed is 409 ``not_localized``. An upload through the API, committed, is pushed (the
server runs with ``--push-uploads``), and a third machine with its own catalog pulls it from
the remote.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from blake3 import blake3
from server_helpers import ApiServer

from assay.bundles.workspace import close_workspaces
from assay.core.settings import Settings
from assay.store.blobstore import TEMP_SUFFIX
from helpers import POSTGRES_ADMIN_URL, skip_or_fail, temporary_postgres_database

sys.path.insert(0, str(Path(__file__).parents[1] / "remotes"))
from remote_helpers import (
    AWS_TEST_CREDENTIALS,
    Remote,
    free_port,
    make_bucket,
    remote_keys,
    running_moto,
    write_remote_bytes,
)

pytestmark = pytest.mark.postgres
ASSAY = str(Path(sys.executable).with_name("assay"))
AWS = AWS_TEST_CREDENTIALS


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with running_moto() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def team(
    moto: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ApiServer, Remote, Path]]:
    """The recipe of docs/server.md: machine A binds the team's context to the bucket; the
    server host (its own home, the same PostgreSQL catalog) makes tokens and runs
    ``assay serve --push-uploads``."""
    root = tmp_path_factory.mktemp("team")
    remote = Remote("s3", f"s3://{make_bucket(moto)}/assay", moto)
    try:
        with temporary_postgres_database(POSTGRES_ADMIN_URL, "assay_team") as url:
            laptop = root / "laptop-a"
            laptop.mkdir()
            a = _machine(laptop / "home", url)
            cli(a, "context", "create", "lab")
            cli(a, "remote", "add", "lab", remote.url, "-c", "lab", "--endpoint-url", moto)
            with assay_serve(root / "server-home", url) as server:
                yield server, remote, laptop
    except ConnectionError as exc:
        skip_or_fail(str(exc))
    finally:
        close_workspaces()


@contextlib.contextmanager
def assay_serve(home: Path, url: str) -> Iterator[ApiServer]:
    env = _machine(home, url)
    made = {
        user: json.loads(cli(env, "--json", "tokens", "create", "--user", user, "--scope", scope))[
            "token"
        ]
        for user, scope in (("ada", "write"), ("bob", "read"))
    }
    port = free_port()
    process = subprocess.Popen(
        [ASSAY, "serve", "--host", "127.0.0.1", "--port", str(port), "--push-uploads"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # printed before uvicorn starts
        assert first.startswith(f"Assay API: http://127.0.0.1:{port}/api/v1"), first
        admin = process.stdout.readline().rsplit(" ", 1)[-1].strip()
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:  # uvicorn is listening once /health answers
            assert process.poll() is None, "assay serve exited"
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "assay serve did not start"
                time.sleep(0.1)
        settings = Settings(home=home, catalog_url=url)
        yield ApiServer(base, home, settings, process, admin, made["ada"], made["bob"])  # type: ignore[arg-type]
    finally:
        process.terminate()
        process.wait(timeout=30)


def _machine(home: Path, catalog_url: str | None) -> dict[str, str]:
    env = {**os.environ, **AWS, "ASSAY_HOME": str(home)}
    env.pop("ASSAY_CATALOG_URL", None)
    if catalog_url is not None:
        env["ASSAY_CATALOG_URL"] = catalog_url
    return env


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([ASSAY, *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"assay {' '.join(args)}: {done.stderr}"
    return done.stdout


def machine_a(server: ApiServer) -> dict[str, str]:
    return _machine(server.home.parent / "laptop-a" / "home", server.settings.catalog_url)


def add_on_a(server: ApiServer, laptop: Path, name: str, data: bytes, push: bool = True) -> str:
    """``assay add`` + ``commit`` (+ ``push``) on machine A; the bundle's uuid."""
    a = machine_a(server)
    source = laptop / name
    source.write_bytes(data)
    made = json.loads(cli(a, "--json", "add", name, str(source), "-c", "lab"))
    cli(a, "commit", name, "-c", "lab")
    if push:
        cli(a, "push", name, "-c", "lab")
    return str(made["bundle"]["uuid"])


def server_has_blob(server: ApiServer, blob_hash: str) -> bool:
    return (server.home / "store" / "objects" / blob_hash[:2] / blob_hash[2:]).exists()


def test_the_server_serves_a_bundle_pushed_by_another_machine_verified_with_range(
    team: tuple[ApiServer, Remote, Path],
) -> None:
    server, _remote, laptop = team
    data = os.urandom(3 * 1024 * 1024 + 17)
    uuid = add_on_a(server, laptop, "scan", data)
    blob_hash = blake3(data).hexdigest()
    assert not server_has_blob(server, blob_hash)  # only machine A's store and S3 hold it
    with server.client(server.reader) as client:
        listed = client.get("/api/v1/contexts/lab/bundles", params={"name": "scan"}).json()
        assert [b["uuid"] for b in listed["items"]] == [uuid]
        part = client.get(
            f"/api/v1/bundles/{uuid}/files/scan", headers={"Range": "bytes=1000-1999"}
        )
        assert part.status_code == 206, part.text
        assert part.content == data[1000:2000]
        assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
        assert server_has_blob(server, blob_hash)  # fetched once, kept: the next read is local
        whole = client.get(f"/api/v1/bundles/{uuid}/files/scan")
        assert whole.status_code == 200
        assert whole.content == data
        assert whole.headers["etag"] == f'"{blob_hash}"'


def test_a_corrupted_remote_object_is_refused_and_nothing_is_kept(
    team: tuple[ApiServer, Remote, Path],
) -> None:
    server, remote, laptop = team
    data = b"x" * 200_000
    uuid = add_on_a(server, laptop, "damaged", data)
    blob_hash = blake3(data).hexdigest()
    key = f"objects/{blob_hash[:2]}/{blob_hash[2:]}"
    assert key in remote_keys(remote, "objects")  # the push sent it (a loose object)
    write_remote_bytes(remote, key, b"y" + data[1:])
    with server.client(server.reader) as client:
        answer = client.get(f"/api/v1/bundles/{uuid}/files/damaged")
        assert answer.status_code == 500
        problem = answer.json()
        assert problem["code"] == "remote_object_corrupted"
        assert b"y" not in answer.content[:1]  # a problem document, no byte of the object
        assert not server_has_blob(server, blob_hash)
        again = client.get(f"/api/v1/bundles/{uuid}/files/damaged", headers={"Range": "bytes=0-9"})
        assert again.status_code == 500
        assert again.json()["code"] == "remote_object_corrupted"


def test_a_bundle_not_pushed_is_not_localized_on_the_server(
    team: tuple[ApiServer, Remote, Path],
) -> None:
    server, _remote, laptop = team
    uuid = add_on_a(server, laptop, "local-only", b"only on laptop A", push=False)
    with server.client(server.reader) as client:
        answer = client.get(f"/api/v1/bundles/{uuid}/files/local-only")
    assert answer.status_code == 409
    problem = answer.json()
    assert problem["code"] == "not_localized"
    assert "assay push local-only -c lab" in problem["detail"]


def test_an_upload_committed_through_the_api_is_pushed_and_pulled_elsewhere(
    team: tuple[ApiServer, Remote, Path], tmp_path: Path
) -> None:
    server, remote, _laptop = team
    data = os.urandom(100_000)
    with server.client(server.writer) as client:
        made = client.post(
            "/api/v1/contexts/lab/bundles",
            params={"name": "from-api", "filename": "result.bin"},
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert made.status_code == 201, made.text
        uuid = made.json()["uuid"]
        committed = client.post(f"/api/v1/bundles/{uuid}/commit")
        assert committed.status_code == 200, committed.text
        assert committed.json()["pushed_to"] == f"{remote.url}/contexts/lab"
    # Machine C: its own home and its own catalog (SQLite), only the bucket in common.
    c = _machine(tmp_path / "laptop-c", None)
    cli(c, "context", "create", "lab")
    cli(c, "remote", "add", "lab", remote.url, "-c", "lab", "--endpoint-url", str(remote.endpoint))
    cli(c, "pull", "from-api", "-c", "lab", "--localize")
    view = Path(json.loads(cli(c, "--json", "cat", "from-api", "-c", "lab")))
    assert view.name == "result.bin"
    assert view.read_bytes() == data
    assert uuid in view.parts  # the same bundle (same uuid), not a copy made here


def test_the_server_and_a_machine_share_the_catalog_each_store_bound(
    team: tuple[ApiServer, Remote, Path],
) -> None:
    """``assay doctor`` on the server's home and on machine A's: both stores bound to the one
    PostgreSQL catalog (a fresh store joins it on its first write)."""
    server, _remote, laptop = team
    add_on_a(server, laptop, "doctor-a", b"written by A", push=False)
    with server.client(server.writer) as client:  # written by the server
        made = client.post("/api/v1/contexts/lab/bundles", params={"name": "doctor-s"}, json=[1])
        assert made.status_code == 201, made.text
    for env in (_machine(server.home, server.settings.catalog_url), machine_a(server)):
        state = json.loads(cli(env, "--json", "doctor"))
        assert state["status"] == "bound", state


def test_concurrent_first_reads_of_a_remote_blob_all_get_verified_bytes(
    team: tuple[ApiServer, Remote, Path],
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    server, _remote, laptop = team
    data = os.urandom(8 * 1024 * 1024)
    uuid = add_on_a(server, laptop, "popular", data)
    blob_hash = blake3(data).hexdigest()
    assert not server_has_blob(server, blob_hash)
    ranges = [(i * 1_000_000, i * 1_000_000 + 999) for i in range(8)]

    def read(span: tuple[int, int]) -> bytes:
        with server.client(server.reader) as client:
            answer = client.get(
                f"/api/v1/bundles/{uuid}/files/popular",
                headers={"Range": f"bytes={span[0]}-{span[1]}"},
            )
        assert answer.status_code == 206, answer.text
        return answer.content

    with ThreadPoolExecutor(8) as pool:
        parts = list(pool.map(read, ranges))
    assert parts == [data[a : b + 1] for a, b in ranges]
    assert server_has_blob(server, blob_hash)
    leftovers = [p for p in (server.home / "store").rglob("*") if p.name.endswith(TEMP_SUFFIX)]
    assert leftovers == []
