"""One real API server per test module and catalog backend (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from server_helpers import ApiServer, running_server

from assay.bundles.workspace import close_workspaces
from helpers import POSTGRES_ADMIN_URL, skip_or_fail, temporary_postgres_database


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    home = tmp_path_factory.mktemp("server") / "home"
    if request.param == "sqlite":
        with running_server(home, None) as server:
            yield server
        close_workspaces()
        return
    try:
        with (
            temporary_postgres_database(POSTGRES_ADMIN_URL, "assay_server") as url,
            running_server(home, url) as server,
        ):
            yield server
    except ConnectionError as exc:
        skip_or_fail(str(exc))
    close_workspaces()
