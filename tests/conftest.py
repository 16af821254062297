"""Shared fixtures: an isolated ASSAY_HOME per test, on SQLite or on a real PostgreSQL server.

``catalog`` is parametrised over both backends; a test that uses ``assay_home`` runs once per
backend. PostgreSQL tests skip visibly when the server is absent, and fail instead under
``ASSAY_REQUIRE_SERVICES=1`` (CI sets it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from assay.bundles.workspace import close_workspaces
from helpers import (
    POSTGRES_ADMIN_URL,
    skip_or_fail,
    temporary_postgres_database,
    truncate_catalog,
)


@pytest.fixture(autouse=True)
def _private_default_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the user's ~/.assay (a test that needs a home asks for
    ``assay_home``/``sqlite_home``, which point ASSAY_HOME elsewhere afterwards)."""
    monkeypatch.setenv("ASSAY_HOME", str(tmp_path / "default-assay-home"))
    monkeypatch.delenv("ASSAY_CATALOG_URL", raising=False)
    monkeypatch.delenv("ASSAY_OUTPUT_CONTEXT", raising=False)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh database on the local PostgreSQL server for this test session (or worker)."""
    try:
        with temporary_postgres_database(POSTGRES_ADMIN_URL, "assay_test") as url:
            yield url
    except ConnectionError as exc:
        skip_or_fail(str(exc))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog(request: pytest.FixtureRequest) -> str:
    """The catalog URL for this run of the test: SQLite under ASSAY_HOME, or PostgreSQL."""
    if request.param == "sqlite":
        return "sqlite"
    url: str = request.getfixturevalue("postgres_database")
    truncate_catalog(url)
    return url


@pytest.fixture
def assay_home(tmp_path: Path, catalog: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty ASSAY_HOME (and catalog) for one test; the environment points at it."""
    home = tmp_path / "assay-home"
    monkeypatch.setenv("ASSAY_HOME", str(home))
    if catalog == "sqlite":
        monkeypatch.delenv("ASSAY_CATALOG_URL", raising=False)
    else:
        monkeypatch.setenv("ASSAY_CATALOG_URL", catalog)
    close_workspaces()
    yield home
    close_workspaces()


@pytest.fixture
def sqlite_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Like ``assay_home`` but SQLite only: for tests about the local folder itself."""
    home = tmp_path / "assay-home"
    monkeypatch.setenv("ASSAY_HOME", str(home))
    monkeypatch.delenv("ASSAY_CATALOG_URL", raising=False)
    close_workspaces()
    yield home
    close_workspaces()
