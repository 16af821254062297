"""Clients of ``dask`` environments: one per environment per process, connected with a bound.

``client_for(environment)`` connects to ``scheduler:`` within ``connect_timeout_s`` (else
``SchedulerUnreachable`` naming the address and the timeout), or starts the environment's
``cluster:`` (``local``: a ``LocalCluster`` of worker processes; a dotted path: that factory
with ``cluster_kwargs``) and keeps it until ``close_clients()`` (also run at exit).
``cluster_info`` is what ``assay env ls`` shows; it never starts a cluster.
"""

from __future__ import annotations

import atexit
import importlib
import threading
from typing import Any

from assay.core.errors import InvalidEnvironmentConfig, SchedulerUnreachable
from assay.jobs.dask_config import DaskOptions, parse_dask_options
from assay.jobs.environments import Environment

_lock = threading.Lock()
_clients: dict[str, Any] = {}
_clusters: dict[str, Any] = {}


def options(environment: Environment) -> DaskOptions:
    if environment.executor != "dask":
        raise InvalidEnvironmentConfig(f"environment {environment.id} is not a dask environment")
    return parse_dask_options(environment.id, environment.extra)


def _connect(address: Any, timeout: float, shown: str) -> Any:
    from distributed import Client

    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise SchedulerUnreachable(
            f"dask scheduler {shown} unreachable within {timeout:g} s ({type(exc).__name__})",
            {"address": shown, "timeout_s": timeout},
        ) from None


def connect(address: str, timeout: float) -> Any:
    """A new client of the scheduler at ``address`` (the caller closes it)."""
    return _connect(address, timeout, address)


def _start_cluster(opts: DaskOptions) -> Any:
    if opts.cluster == "local":
        from distributed import LocalCluster

        return LocalCluster(
            n_workers=opts.n_workers or 2,
            threads_per_worker=opts.threads_per_worker or 1,
            processes=True,
            dashboard_address=None,
            memory_limit=opts.memory_limit or "auto",
        )
    assert opts.cluster is not None
    module_name, _, attr = opts.cluster.rpartition(".")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise InvalidEnvironmentConfig(
            f"cluster {opts.cluster}: cannot import it here ({type(exc).__name__}: {exc})"
        ) from None
    cluster = factory(**opts.cluster_kwargs)
    if opts.n_workers and hasattr(cluster, "scale"):
        cluster.scale(opts.n_workers)
    return cluster


def client_for(environment: Environment) -> Any:
    """The ``distributed.Client`` of ``environment`` (made once per process)."""
    opts = options(environment)
    with _lock:
        client = _clients.get(environment.id)
        if client is not None and client.status == "running":
            return client
        if opts.scheduler:
            client = _connect(opts.scheduler, opts.connect_timeout_s, opts.scheduler)
        else:
            cluster = _clusters.get(environment.id)
            if cluster is None:
                cluster = _start_cluster(opts)
                _clusters[environment.id] = cluster
            client = _connect(cluster, opts.connect_timeout_s, opts.address)
        _clients[environment.id] = client
        return client


def forget(environment: Environment) -> None:
    """Drop this process's client of ``environment`` (its scheduler went away); the next
    ``client_for`` connects afresh. A cluster this process started is kept."""
    with _lock:
        client = _clients.pop(environment.id, None)
    if client is not None:
        client.close(timeout=1)


def close_clients() -> None:
    """Close every client and every cluster this process started."""
    with _lock:
        clients, clusters = list(_clients.values()), list(_clusters.values())
        _clients.clear()
        _clusters.clear()
    for client in clients:
        client.close()
    for cluster in clusters:
        cluster.close()


atexit.register(close_clients)


def scheduler_summary(client: Any) -> dict[str, Any]:
    """Workers, threads and memory as the scheduler reports them."""
    info = client.scheduler_info()
    workers = info.get("workers", {})
    return {
        "workers": len(workers),
        "threads": sum(int(w.get("nthreads", 0)) for w in workers.values()),
        "memory_bytes": sum(int(w.get("memory_limit", 0) or 0) for w in workers.values()),
    }


def cluster_info(environment: Environment) -> dict[str, Any]:
    """``{"status", "workers", "threads", "memory_bytes"}`` for ``assay env ls``: read from the
    scheduler (bounded by ``connect_timeout_s``); ``unreachable`` when it does not answer; a
    ``cluster:`` not started by this process is ``not started`` (listing never starts one)."""
    opts = options(environment)
    empty: dict[str, Any] = {"workers": None, "threads": None, "memory_bytes": None}
    with _lock:
        client = _clients.get(environment.id)
    if client is None and not opts.scheduler:
        return {"status": "not started (started on first submit)", **empty}
    try:
        client = client or client_for(environment)
        return {"status": "ok", **scheduler_summary(client)}
    except SchedulerUnreachable:
        return {"status": "unreachable", **empty}
