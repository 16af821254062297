"""Compute-to-data, shaped like Ocean's ``OceanCompute`` (see docs/compute.md).

```python
from assay.compute import Compute, ComputeInput

compute = Compute()
env = compute.get_free_c2d_environment()            # None when no environment is free
job_id = compute.start("alice", "assay://hospital/scans", env["id"],
                       algorithm="examples/counter:0.1.0")
compute.status(job_id, "alice")                     # {ok, status, statusText, ..., results}
compute.result(job_id, 0, "alice")["path"]          # a read-only local file
compute.compute_job_result_logs(job_id, "alice", log_type="algorithmLog")   # [bytes, ...]
compute.stop(job_id, "alice")                       # ends STOPPED
```

The consumer (Ocean's wallet) is an id string. A dataset is a catalog reference
``assay://context/name[@uuid]`` or a ``ComputeInput`` (reference, key, userdata). The algorithm
is a registered service id, an algorithm bundle ``assay://context/name``, or, through
``algorithm_meta``, a raw algorithm (Ocean's ``AlgorithmMetadata`` dict). Ocean passes a DDO
and a service with each call; Assay knows them from the job, so ``status``, ``result``,
``compute_job_result_logs`` and ``stop`` take ``(job_id, consumer)``.
"""

from __future__ import annotations

from typing import Any

from assay.bundles.workspace import Workspace, open_workspace
from assay.computejobs import lifecycle, publishing
from assay.computejobs.algorithms import resolve_algorithm
from assay.computejobs.lifecycle import ComputeInput
from assay.core.errors import InvalidInput
from assay.jobs import store as job_store

__all__ = ["Compute", "ComputeInput"]


class Compute:
    """Compute jobs on datasets in environments (Ocean's ``OceanCompute``)."""

    def __init__(self, workspace: Workspace | None = None) -> None:
        self._workspace = workspace

    @property
    def workspace(self) -> Workspace:
        return self._workspace or open_workspace()

    def start(
        self,
        consumer: str,
        dataset: Any,
        compute_environment: str,
        algorithm: Any = None,
        algorithm_meta: Any = None,
        algorithm_algocustomdata: dict[str, Any] | None = None,
        additional_datasets: list[Any] = [],  # noqa: B006 -- Ocean's signature; never mutated
        force: bool = False,
    ) -> str:
        """Start a job (after every check) and return its id; the same work again returns the
        existing job unless ``force`` re-runs a finished one."""
        workspace = self.workspace
        chosen = resolve_algorithm(workspace, algorithm, algorithm_meta)
        return lifecycle.start(
            consumer,
            [dataset, *additional_datasets],
            compute_environment,
            chosen,
            algorithm_algocustomdata,
            force=force,
            workspace=workspace,
        )

    def status(self, job_id: str, consumer: str) -> dict[str, Any]:
        workspace = self.workspace
        return lifecycle.status_of(lifecycle.owned_job(job_id, consumer, workspace), workspace)

    def result(self, job_id: str, index: int, consumer: str) -> dict[str, Any]:
        """Result ``index``: ``{index, filename, filesize, type, path, content_hash}``; ``path``
        is a read-only local file (Ocean returns the bytes of a download URL)."""
        workspace = self.workspace
        record = lifecycle.owned_job(job_id, consumer, workspace)
        item, path = publishing.result_path(workspace, record.job_id, index)
        return {**item, "path": str(path)}

    def compute_job_result_logs(
        self, job_id: str, consumer: str, log_type: str = "output"
    ) -> list[bytes]:
        """The contents of every result of ``log_type`` (``output``, ``algorithmLog``,
        ``configurationLog``, ``publishLog``), in index order."""
        if log_type not in publishing.RESULT_TYPES:
            raise InvalidInput(
                f"log_type {log_type!r}: use one of {', '.join(publishing.RESULT_TYPES)}"
            )
        workspace = self.workspace
        record = lifecycle.owned_job(job_id, consumer, workspace)
        found = []
        for item in publishing.list_results(workspace, record.job_id):
            if item["type"] == log_type:
                _, path = publishing.result_path(workspace, record.job_id, item["index"])
                found.append(path.read_bytes())
        return found

    def stop(self, job_id: str, consumer: str) -> dict[str, Any]:
        """Ask the job to stop; it ends STOPPED (not "finished"). The status dict back."""
        return lifecycle.stop(job_id, consumer, self.workspace)

    def wait(self, job_id: str, consumer: str, timeout: float | None = None) -> dict[str, Any]:
        """Block until the job ends (or ``timeout``), then its status. (Not in Ocean.)"""
        workspace = self.workspace
        record = lifecycle.owned_job(job_id, consumer, workspace)
        job_store.wait_terminal(record.job_id, timeout=timeout, workspace=workspace)
        return self.status(record.job_id, consumer)

    def get_c2d_environments(self) -> list[dict[str, Any]]:
        """Every environment with Ocean's keys (``id``, ``priceMin``, ``status``,
        ``lastSeen``, ...) and Assay's (``cpu``, ``ramGB``, ``maxJobs``, ``isolation``, ...)."""
        workspace = self.workspace
        return [
            environment_dict(env, workspace) for env in lifecycle.environments(workspace).values()
        ]

    def get_free_c2d_environment(self) -> dict[str, Any] | None:
        """The first environment whose ``priceMin`` is 0, or None (never StopIteration)."""
        for environment in self.get_c2d_environments():
            if float(environment["priceMin"]) == 0.0:
                return environment
        return None


def environment_dict(environment: Any, workspace: Workspace) -> dict[str, Any]:
    running = job_store.list_jobs(
        environment=environment.id, state="RUNNING", limit=None, workspace=workspace
    )
    queued = job_store.list_jobs(
        environment=environment.id, state="QUEUED", limit=None, workspace=workspace
    )
    seen = [job.last_seen for job in running if job.last_seen is not None]
    return {
        "id": environment.id,
        "priceMin": environment.price_min,
        "feeToken": None,
        "consumerAddress": "",
        "namespace": "local",
        "status": "ok",
        "lastSeen": max(seen) if seen else None,
        "cpu": environment.cpu,
        "ramGB": environment.ram_gb,
        "diskGB": environment.disk_gb,
        "gpu": environment.gpu,
        "maxJobs": environment.max_jobs,
        "maxDuration": environment.max_duration_s,
        "network": environment.network,
        "isolation": environment.isolation,
        "executor": environment.executor,
        "description": environment.description,
        "runningJobs": len(running),
        "queuedJobs": len(queued),
    }
