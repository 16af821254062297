"""Fixtures for the remote suite: a real S3-protocol server (moto_server) on loopback, remotes
on it and on a folder (``file://``), and two machines (two ASSAY_HOMEs, two catalogs).

moto_server is started once per test session (per xdist worker) on a free port; it skips
visibly when it cannot start, and fails under ``ASSAY_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from remote_helpers import MOTO_SERVER, Machine, Remote, make_bucket, start_moto, stop_moto

from helpers import (
    POSTGRES_ADMIN_URL,
    skip_or_fail,
    temporary_postgres_database,
    truncate_catalog,
)

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The endpoint URL of a moto_server started for this session."""
    server = start_moto()
    if server is None:
        skip_or_fail(f"moto_server could not be started ({MOTO_SERVER})")
    assert server is not None
    try:
        yield server.endpoint
    finally:
        stop_moto(server)


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Test credentials and the moto endpoint in the environment (as a user would set them)."""
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(key, raising=False)
    return moto_endpoint


@pytest.fixture(params=["s3", "file"])
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> Remote:
    """An empty remote: a fresh bucket on moto_server, or a fresh folder."""
    if request.param == "file":
        root = tmp_path / "shared-drive"
        root.mkdir()
        return Remote("file", f"file://{root}", None)
    endpoint: str = request.getfixturevalue("aws_env")
    return Remote("s3", f"s3://{make_bucket(endpoint)}/assay", endpoint)


# -- two machines ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def second_postgres_database() -> Iterator[str]:
    """A second fresh PostgreSQL database: machine B's catalog."""
    try:
        with temporary_postgres_database(POSTGRES_ADMIN_URL, "assay_test_b") as url:
            yield url
    except ConnectionError as exc:
        skip_or_fail(str(exc))


@pytest.fixture
def machines(
    assay_home: Path, catalog: str, tmp_path: Path, request: pytest.FixtureRequest
) -> tuple[Machine, Machine]:
    """Machine A (the test's ``assay_home``) and machine B, on the same catalog backend."""
    a = Machine("A", assay_home, None if catalog == "sqlite" else catalog)
    if catalog == "sqlite":
        b = Machine("B", tmp_path / "home-b", None)
    else:
        url: str = request.getfixturevalue("second_postgres_database")
        truncate_catalog(url)
        b = Machine("B", tmp_path / "home-b", url)
    return a, b
