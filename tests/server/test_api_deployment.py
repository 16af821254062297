"""How the server is deployed, through a real uvicorn as ``assay serve`` runs it: behind a
reverse proxy (X-Forwarded-Proto/-For from a trusted proxy address make the app see the
client's scheme, so the UI's login cookie is ``Secure``; from an address not in
``--forwarded-allow-ips`` they are ignored), with several worker processes, and with the
token cache off (revocation at once) or misconfigured (a clear error at start).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_helpers import ApiServer, running_server, server_env

from assay.auth import tokens
from assay.bundles.workspace import close_workspaces

FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}


@pytest.fixture
def server_trusting(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ApiServer]:
    extra = ["--forwarded-allow-ips", request.param] if request.param else []
    with running_server(tmp_path / "home", None, extra) as server:
        yield server
    close_workspaces()


def _login(server: ApiServer, headers: dict[str, str]) -> str:
    with server.client() as client:
        answer = client.post(
            "/ui/login",
            content=f"token={server.reader}&next=/ui/",
            headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
        )
    assert answer.status_code == 303, answer.text
    return answer.headers["set-cookie"].lower()


@pytest.mark.parametrize("server_trusting", [None], indirect=True)  # default: 127.0.0.1
def test_a_trusted_proxys_forwarded_scheme_makes_the_cookie_secure(
    server_trusting: ApiServer,
) -> None:
    assert "secure" in _login(server_trusting, FORWARDED)
    assert "secure" not in _login(server_trusting, {})  # plain http on loopback
    with server_trusting.client(server_trusting.reader) as client:  # the API still answers
        assert client.get("/api/v1/whoami", headers=FORWARDED).json()["user"] == "bob"


@pytest.mark.parametrize("server_trusting", ["10.9.8.7"], indirect=True)
def test_forwarded_headers_from_an_untrusted_address_are_ignored(
    server_trusting: ApiServer,
) -> None:
    assert "secure" not in _login(server_trusting, FORWARDED)


def test_several_worker_processes_serve_one_catalog(tmp_path: Path) -> None:
    """``--workers 2``: uvicorn's supervisor starts two processes that make the app from its
    import string; together they answer, and the whole server stops on SIGTERM."""
    with running_server(tmp_path / "home", None, ["--workers", "2"]) as server:
        with server.client(server.writer) as client:
            assert client.post("/api/v1/contexts", json={"name": "multi"}).status_code == 201
            for i in range(20):  # a new connection each: the kernel spreads them
                with server.client(server.writer) as fresh:
                    made = fresh.post(
                        "/api/v1/contexts/multi/bundles", params={"name": f"b{i}"}, json=i
                    )
                    assert made.status_code == 201, made.text
            listed = client.get("/api/v1/contexts/multi/bundles", params={"limit": 100}).json()
        assert len(listed["items"]) == 20
        children = _children(server.process.pid)
        workers = [pid for pid in children if b"spawn_main" in _cmdline(pid)]
        assert len(workers) == 2
    assert server.process.returncode == 0
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    close_workspaces()


def test_without_the_token_cache_a_revoked_token_fails_its_next_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSAY_SERVER_TOKEN_CACHE_SECONDS", "0")
    with running_server(tmp_path / "home", None) as server:
        record, token = tokens.create_token("carol", ["read"], workspace=server.workspace)
        with server.client(token) as client:
            for _ in range(3):
                assert client.get("/api/v1/whoami").status_code == 200
            tokens.revoke_token(record.token_id, workspace=server.workspace)
            answer = client.get("/api/v1/whoami")
        assert answer.status_code == 401 and answer.json()["code"] == "token_revoked"
    close_workspaces()


def test_a_bad_token_cache_setting_stops_the_server_clearly(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "assay.server.serve_fd", "--port", "0"],
        env={**server_env(tmp_path / "home", None), "ASSAY_SERVER_TOKEN_CACHE_SECONDS": "soon"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: ASSAY_SERVER_TOKEN_CACHE_SECONDS='soon' must be a number of seconds from 0 to 300"
    )


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(x) for x in text.split()]


def _cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()
