"""Catalog URLs and settings from the environment: clear errors, passwords never shown."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from assay import api
from assay.bundles.workspace import close_workspaces
from assay.core.errors import CatalogUnavailable, InvalidInput
from helpers import run_python

SECRET = "s3cr3t-pa55"

# The call runs in a child process so that a hang fails the test (by the subprocess timeout)
# instead of hanging the suite.
_LIST_CONTEXTS = """
import json
from assay import api
from assay.core.errors import AssayError
try:
    api.ls_contexts()
    print(json.dumps("reached"))
except AssayError as exc:
    print(json.dumps([type(exc).__name__, str(exc)]))
"""


def _outcome(home: Path, url: str) -> list[str]:
    result = run_python(
        _LIST_CONTEXTS, env={"ASSAY_HOME": str(home), "ASSAY_CATALOG_URL": url}, timeout=60
    )
    assert result.returncode == 0, result.stderr
    outcome: list[str] = json.loads(result.stdout)
    return outcome


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word (a hung database)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def free_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()  # nothing listens there now: connections are refused
    return port


def test_refused_connection(tmp_path: Path, free_port: int) -> None:
    url = f"postgresql+psycopg://alice:{SECRET}@127.0.0.1:{free_port}/catalog"

    kind, message = _outcome(tmp_path / "home", url)

    assert kind == "CatalogUnavailable"
    assert message.startswith(
        f"cannot reach the catalog at postgresql+psycopg://alice:***@127.0.0.1:{free_port}/catalog"
    )
    assert "refused" in message.lower()
    assert SECRET not in message
    assert "\n" not in message


def test_a_server_that_never_answers_times_out(tmp_path: Path, silent_server: int) -> None:
    url = f"postgresql+psycopg://alice:{SECRET}@127.0.0.1:{silent_server}/catalog"

    kind, message = _outcome(tmp_path / "home", url)

    assert kind == "CatalogUnavailable"
    assert "timeout" in message.lower()
    assert "alice:***@" in message
    assert SECRET not in message


def test_unreachable_catalog_in_process(
    tmp_path: Path, free_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSAY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(
        "ASSAY_CATALOG_URL", f"postgresql+psycopg://bob:{SECRET}@127.0.0.1:{free_port}/x"
    )
    close_workspaces()
    with pytest.raises(CatalogUnavailable) as caught:
        api.context("c")
    assert SECRET not in str(caught.value)
    assert caught.value.code == "catalog_unavailable"
    close_workspaces()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"mysql://bob:{SECRET}@db/assay", "unsupported database 'mysql'"),
        ("oracle://db/assay", "unsupported database 'oracle'"),
        ("not a url", "is not a valid database URL"),
    ],
)
def test_unsupported_catalog_urls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, expected: str
) -> None:
    monkeypatch.setenv("ASSAY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ASSAY_CATALOG_URL", url)
    close_workspaces()

    with pytest.raises(InvalidInput, match=expected) as caught:
        api.ls_contexts()

    assert SECRET not in str(caught.value)
    assert "sqlite:///" in str(caught.value) or "valid database URL" in str(caught.value)
    close_workspaces()


def test_catalog_url_with_a_driver_that_is_not_installed(tmp_path: Path) -> None:
    """create_engine imports the DBAPI at once: a missing driver must not be a traceback."""
    outcome = _outcome(tmp_path / "home", f"postgresql+pg8000://bob:{SECRET}@127.0.0.1/x")

    assert outcome[0] == "MissingExtra"
    assert "pg8000" in outcome[1]
    assert SECRET not in outcome[1]


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("ASSAY_MAX_UNCOMMITTED", "lots", "ASSAY_MAX_UNCOMMITTED='lots' is not a whole number"),
        ("ASSAY_MAX_UNCOMMITTED", "0", "ASSAY_MAX_UNCOMMITTED='0' must be at least 1"),
        ("ASSAY_LINK_TYPE", "symlink", "unknown link type 'symlink'"),
    ],
)
def test_bad_settings_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv("ASSAY_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ASSAY_CATALOG_URL", raising=False)
    monkeypatch.setenv(variable, value)
    close_workspaces()

    with pytest.raises(InvalidInput, match=expected):
        api.ls_contexts()
