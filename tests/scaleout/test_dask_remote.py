"""Bundles by reference through an S3 remote (moto_server): workers keep their own ASSAY_HOME,
so every input a task reads is pulled from the remote by content hash and every output is
pushed there. And a worker without the remote's credentials is refused at submit time."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask_pipeline_tasks as tasks
import pytest
from dask_helpers import HERE, SRC, distributed, needs_dask, write_environments

from assay import api
from assay.bundles import remotes
from assay.bundles.workspace import open_workspace
from assay.core.errors import WorkerNotReady
from assay.jobs.executors import dask_client

sys.path.insert(0, str(HERE.parent / "remotes"))
from remote_helpers import AWS_TEST_CREDENTIALS, make_bucket, running_moto

pytestmark = [pytest.mark.postgres, pytest.mark.dask, needs_dask]
CTX = "scale"
CREDENTIALS = AWS_TEST_CREDENTIALS


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with running_moto() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def s3_cluster(moto: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One worker process that has the S3 credentials (the module's other cluster has none)."""
    saved = dict(os.environ)
    os.environ.update(CREDENTIALS)
    os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), str(HERE.parent), str(SRC)])
    try:
        local = distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)
    yield local
    dask_client.close_clients()
    local.close()


@pytest.fixture
def with_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)


def test_inputs_and_outputs_travel_through_the_remote(
    dask_home: Path, tmp_path: Path, moto: str, s3_cluster: Any, with_credentials: None
) -> None:
    worker_home = tmp_path / "worker-home"  # not the submitter's: nothing shared but S3 + PG
    write_environments(
        dask_home,
        f"""environments:
  - id: far
    executor: dask
    scheduler: {s3_cluster.scheduler_address}
    resources: false
    worker_home: {worker_home}
    max_jobs: 2
""",
    )
    api.remote(CTX, "shared", f"s3://{make_bucket(moto)}/assay", endpoint_url=moto)
    result = api.apply(CTX, tasks.SumSquares, params={"width": 3}, compute_environment="far")
    assert result == {"success": True, "did_work": True}
    workspace = open_workspace()
    assert remotes.status(workspace, CTX).pushed == 4  # every output reached the remote
    assert not any((dask_home / "store" / "objects").glob("*/*"))  # none made here
    api.pull(CTX, localize=True)  # the submitter reads them from S3 by content hash
    assert api.cat(CTX, "SumSquares") == 0 + 1 + 4
    assert api.verify(CTX) is not None


def test_a_worker_without_the_remotes_credentials_is_refused(
    dask_home: Path, moto: str, with_credentials: None, cluster: Any
) -> None:
    api.remote(CTX, "shared", f"s3://{make_bucket(moto)}/assay", endpoint_url=moto)
    with pytest.raises(WorkerNotReady, match="cannot use remote s3://"):
        api.apply(CTX, tasks.SumSquares, params={"width": 2}, compute_environment="cluster")
    assert api.search(CTX) == []
