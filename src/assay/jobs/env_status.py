"""What ``assay env ls`` shows: each environment with its status, job counts and heartbeat."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from assay.bundles.workspace import Workspace, open_workspace
from assay.catalog import job_queries as queries
from assay.jobs import sandbox
from assay.jobs.environments import Environment, load_environments

ACTIVE = ("PROVISIONING", "RUNNING", "PUBLISHING")


@dataclass(frozen=True)
class EnvironmentStatus:
    environment: Environment
    status: str  # "ok" or "unavailable: <why>"
    running: int
    queued: int
    last_seen: float | None  # newest heartbeat of any of its jobs
    #: Dask environments: ``workers``, ``threads``, ``memory_bytes`` read from the scheduler.
    cluster: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.environment.as_dict(),
            "status": self.status,
            "running": self.running,
            "queued": self.queued,
            "last_seen": self.last_seen,
            "cluster": self.cluster,
        }


def _status(environment: Environment) -> tuple[str, dict[str, Any] | None]:
    if environment.executor == "dask":
        if importlib.util.find_spec("distributed") is None:
            return "unavailable: the dask executor needs dask[distributed] installed", None
        from assay.jobs.executors.dask_client import cluster_info

        info = cluster_info(environment)  # bounded by the environment's connect_timeout_s
        return info.pop("status"), info
    return _local_status(environment), None


def _local_status(environment: Environment) -> str:
    if environment.isolation == "sandbox" and not sandbox.available():
        return "unavailable: bubblewrap (bwrap) cannot run here; install bubblewrap"
    return "ok"


def environment_statuses(
    workspace: Workspace | None = None,
    environments: dict[str, Environment] | None = None,
) -> list[EnvironmentStatus]:
    ws = workspace or open_workspace()
    if environments is None:
        environments = load_environments(ws.settings)
    with ws.read() as conn:
        counts = queries.count_by_environment_state(conn, ("QUEUED", *ACTIVE))
        seen = queries.last_seen_by_environment(conn)
    result = []
    for env_id, environment in sorted(environments.items()):
        status, cluster = _status(environment)
        result.append(
            EnvironmentStatus(
                environment=environment,
                status=status,
                running=sum(counts.get((env_id, state), 0) for state in ACTIVE),
                queued=counts.get((env_id, "QUEUED"), 0),
                last_seen=seen.get(env_id),
                cluster=cluster,
            )
        )
    return result
