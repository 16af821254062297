"""A real Dask LocalCluster (2 worker processes) for the module, a PostgreSQL catalog per test.

Skips visibly when dask[distributed] is not installed. Workers import the test entry points
from this folder (put on their PYTHONPATH before the cluster starts).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dask_helpers import HERE, SRC, distributed, write_environments

from assay.bundles import operations
from assay.bundles.workspace import close_workspaces, open_workspace
from assay.jobs.executors import dask_client
from helpers import truncate_catalog


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    if distributed is None:
        pytest.skip("dask[distributed] is not installed")
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), str(HERE.parent), str(SRC)])
    try:
        local = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            resources={"CPU": 1},
        )
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old
    yield local
    dask_client.close_clients()
    local.close()


@pytest.fixture
def client(cluster: Any) -> Iterator[Any]:
    with distributed.Client(cluster, set_as_default=False) as c:
        yield c


@pytest.fixture
def dask_home(
    tmp_path: Path, postgres_database: str, monkeypatch: pytest.MonkeyPatch, cluster: Any
) -> Iterator[Path]:
    """ASSAY_HOME with a PostgreSQL catalog and two dask environments on the module's cluster:
    ``cluster`` (failed when lost) and ``cluster-rq`` (``requeue: true``)."""
    truncate_catalog(postgres_database)
    home = tmp_path / "assay-home"
    monkeypatch.setenv("ASSAY_HOME", str(home))
    monkeypatch.setenv("ASSAY_CATALOG_URL", postgres_database)
    write_environments(
        home,
        f"""environments:
  - id: cluster
    executor: dask
    scheduler: {cluster.scheduler_address}
    cpu: 1
    max_jobs: 4
  - id: cluster-rq
    executor: dask
    scheduler: {cluster.scheduler_address}
    cpu: 1
    max_jobs: 4
    requeue: true
""",
    )
    close_workspaces()
    operations.create_context(open_workspace(), "scale")
    yield home
    dask_client.close_clients()
    close_workspaces()
