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

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.environment.as_dict(),
            "status": self.status,
            "running": self.running,
            "queued": self.queued,
            "last_seen": self.last_seen,
        }


def _status(environment: Environment) -> str:
    if environment.executor == "dask" and importlib.util.find_spec("distributed") is None:
        return "unavailable: the dask executor needs dask[distributed] installed"
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
    return [
        EnvironmentStatus(
            environment=environment,
            status=_status(environment),
            running=sum(counts.get((env_id, state), 0) for state in ACTIVE),
            queued=counts.get((env_id, "QUEUED"), 0),
            last_seen=seen.get(env_id),
        )
        for env_id, environment in sorted(environments.items())
    ]
