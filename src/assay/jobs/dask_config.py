"""The options of an ``executor: dask`` environment (parsed here; no dask import).

Exactly one of:

* ``scheduler: tcp://host:8786`` — an existing Dask distributed scheduler;
* ``cluster: local`` — a ``LocalCluster`` started by Assay on first use and closed with the
  process (``n_workers``, ``threads_per_worker``, ``memory_limit`` from the environment);
* ``cluster: dotted.path.ClusterFactory`` with ``cluster_kwargs: {...}`` — any object Dask's
  ``Client`` accepts, e.g. ``dask_jobqueue.SLURMCluster`` (built on first use).

Other options: ``connect_timeout_s`` (default 5: how long to wait for the scheduler),
``resources`` (default true: each task asks the scheduler for ``cpu``/``ram_gb``/``gpu`` as
worker resources ``CPU``, ``MEMORY``, ``GPU``; workers must then declare them, e.g.
``dask worker --resources "CPU=4,MEMORY=16e9"``; false: no annotation, any worker runs any
task), ``worker_home`` (the ``ASSAY_HOME`` workers use; default: the submitter's, right for a
shared file system or one machine).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_SCHEDULER = re.compile(r"^(tcp|tls|inproc|ucx|ws|wss)://\S+$")
_DOTTED = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+$")
DEFAULT_CONNECT_TIMEOUT_S = 5.0
KEYS = (
    "scheduler",
    "cluster",
    "cluster_kwargs",
    "n_workers",
    "threads_per_worker",
    "memory_limit",
    "connect_timeout_s",
    "resources",
    "worker_home",
)


@dataclass(frozen=True)
class DaskOptions:
    scheduler: str | None = None
    cluster: str | None = None
    cluster_kwargs: dict[str, Any] = field(default_factory=dict)
    n_workers: int | None = None
    threads_per_worker: int | None = None
    memory_limit: str | None = None
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    resources: bool = True
    worker_home: str | None = None

    @property
    def address(self) -> str:
        """What the environment points at, for messages."""
        if self.scheduler:
            return self.scheduler
        return f"cluster {self.cluster}"


def parse_dask_options(env_id: str, extra: dict[str, Any]) -> DaskOptions:
    """The dask options of environment ``env_id`` from its extra keys; ``ValueError`` with
    the reason (the caller adds file and line)."""
    scheduler, cluster = extra.get("scheduler"), extra.get("cluster")
    if (scheduler is None) == (cluster is None):
        raise ValueError(
            f"environment {env_id}: executor dask needs exactly one of 'scheduler: tcp://host:8786' "
            "or 'cluster: local | dotted.path.ClusterFactory'"
        )
    if scheduler is not None and not (isinstance(scheduler, str) and _SCHEDULER.match(scheduler)):
        raise ValueError(f"environment {env_id}: scheduler {scheduler!r}: use tcp://host:port")
    if cluster is not None and not (
        isinstance(cluster, str) and (cluster == "local" or _DOTTED.match(cluster))
    ):
        raise ValueError(
            f"environment {env_id}: cluster {cluster!r}: use 'local' or a dotted path such as "
            "dask_jobqueue.SLURMCluster"
        )
    kwargs = extra.get("cluster_kwargs", {})
    if not isinstance(kwargs, dict):
        raise ValueError(f"environment {env_id}: cluster_kwargs must be a mapping")
    if kwargs and cluster in (None, "local"):
        raise ValueError(f"environment {env_id}: cluster_kwargs needs cluster: dotted.path")
    values: dict[str, Any] = {}
    for key in ("n_workers", "threads_per_worker"):
        value = extra.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ValueError(f"environment {env_id}: {key} must be a whole number >= 1")
        values[key] = value
    timeout = extra.get("connect_timeout_s", DEFAULT_CONNECT_TIMEOUT_S)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValueError(f"environment {env_id}: connect_timeout_s must be a number > 0")
    resources = extra.get("resources", True)
    if not isinstance(resources, bool):
        raise ValueError(f"environment {env_id}: resources must be true or false")
    for key in ("memory_limit", "worker_home"):
        value = extra.get(key)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"environment {env_id}: {key} must be text")
    return DaskOptions(
        scheduler=scheduler,
        cluster=cluster,
        cluster_kwargs=dict(kwargs),
        n_workers=values["n_workers"],
        threads_per_worker=values["threads_per_worker"],
        memory_limit=extra.get("memory_limit"),
        connect_timeout_s=float(timeout),
        resources=resources,
        worker_home=extra.get("worker_home"),
    )


def task_resources(cpu: int | None, ram_gb: float | None, gpu: int) -> dict[str, float]:
    """The Dask ``resources=`` annotation of one task of an environment with these limits."""
    wanted: dict[str, float] = {}
    if cpu:
        wanted["CPU"] = float(cpu)
    if ram_gb:
        wanted["MEMORY"] = float(ram_gb) * 1e9
    if gpu:
        wanted["GPU"] = float(gpu)
    return wanted
