"""The Dask executor: each job is one ``client.submit`` to a Dask distributed scheduler.

``DaskExecutor(environment).submit(job_id, entry)`` sends ``dask_task.run_job_task`` (a
top-level function, found by import path on the workers) with plain references only — the job
id, the dotted entry point, the catalog URL and home — under the key ``assay-job-<job id>``,
``pure=False``, and (unless the environment says ``resources: false``) a ``resources=``
annotation from its cpu/ram_gb/gpu. The future is handed to ``fire_and_forget`` and dropped at
once: the task moves the job's states in the catalog itself, and callers poll the catalog
(``wait``). Submitting a key the scheduler still holds joins that task; re-submitting a
finished job returns at once on the worker.

Checks at submit time, each a one-line ``AssayError``: a scheduler that does not answer within
``connect_timeout_s`` (``SchedulerUnreachable``), an entry module the workers cannot import
(``WorkerNotReady``, probed with ``client.run``), an argument that cannot be pickled
(``ParamNotPicklable``).

``stop`` records the stop request (a QUEUED job ends STOPPED at once; a running task sees it
through ``JobContext.stop_requested()`` and ends STOPPED) and cancels the pending future.
``reconcile_dask`` settles jobs of dask environments that the scheduler no longer knows (or
whose scheduler is gone): FAILED, or re-queued and re-submitted with ``requeue: true``.
"""

from __future__ import annotations

import json
import pickle
import time
from typing import Any

from assay.bundles.workspace import Workspace, open_workspace
from assay.catalog import job_queries as queries
from assay.core.errors import (
    InvalidInput,
    InvalidTransition,
    ParamNotPicklable,
    SchedulerUnreachable,
    WorkerNotReady,
)
from assay.jobs import store
from assay.jobs.dask_config import task_resources
from assay.jobs.environments import Environment, load_environments
from assay.jobs.executors import dask_client
from assay.jobs.executors.dask_task import importable, resolve_entry, run_job_task
from assay.jobs.reconcile import dask_launched
from assay.jobs.records import JobRecord

ACTIVE = ("QUEUED", "PROVISIONING", "RUNNING", "PUBLISHING")
LOST_TASK = "its scheduler no longer holds its task"
#: Dask task states in which a task will still run (or is running).
LIVE_TASK_STATES = ("released", "waiting", "no-worker", "queued", "processing", "memory")


def job_key(job_id: str) -> str:
    return f"assay-job-{job_id}"


def check_picklable(what: str, value: Any) -> None:
    """``ParamNotPicklable`` when ``value`` cannot travel to a worker."""
    try:
        pickle.dumps(value)
    except Exception as exc:  # pickling raises many types (TypeError, PicklingError, ...)
        raise ParamNotPicklable(
            f"{what} cannot be sent to a Dask worker: {type(exc).__name__}: {exc}"
        ) from None


def probe_modules(client: Any, modules: list[str], address: str) -> None:
    """``WorkerNotReady`` when a worker cannot import one of ``modules``."""
    for module in sorted(set(modules)):
        answers = client.run(importable, module)
        for worker, problem in sorted(answers.items()):
            if problem is not None:
                raise WorkerNotReady(
                    f"worker {worker} of {address} cannot import {module}: {problem}",
                    {"worker": worker, "module": module},
                )


def _scheduler_task_states(dask_scheduler: Any) -> dict[str, str]:
    """Run on the scheduler: key -> state of the tasks it holds (assay keys only)."""
    return {
        str(key): task.state
        for key, task in dask_scheduler.tasks.items()
        if str(key).startswith("assay-")
    }


def live_keys(client: Any) -> set[str]:
    states = client.run_on_scheduler(_scheduler_task_states)
    return {key for key, state in states.items() if state in LIVE_TASK_STATES}


class DaskExecutor:
    """Submit jobs of one ``executor: dask`` environment; the catalog holds their state."""

    def __init__(self, environment: Environment, workspace: Workspace | None = None) -> None:
        if environment.executor != "dask":
            raise InvalidInput(f"environment {environment.id} does not use the dask executor")
        self.environment = environment
        self.options = dask_client.options(environment)
        self.workspace = workspace or open_workspace()
        self._probed: set[str] = set()

    @property
    def client(self) -> Any:
        return dask_client.client_for(self.environment)

    def refs(self) -> dict[str, Any]:
        """What a worker needs to find the catalog and blob store (plain strings)."""
        settings = self.workspace.settings
        return {
            "home": self.options.worker_home or str(settings.home),
            "catalog_url": settings.catalog_url,
            "requeue": self.environment.requeue,
        }

    def resources(self) -> dict[str, float] | None:
        if not self.options.resources:
            return None
        env = self.environment
        return task_resources(env.cpu, env.ram_gb, env.gpu) or None

    def submit(self, job_id: str, entry: str, *, probe: bool = True) -> str:
        """Queue job ``job_id`` (CREATED or QUEUED, of this environment) to run
        ``entry(ctx, spec)`` on a worker; returns the Dask key. Raises before anything is
        queued when the entry does not import here or on the workers, or the scheduler does
        not answer."""
        record = store.get_job(job_id, workspace=self.workspace)
        if record.environment != self.environment.id:
            raise InvalidInput(
                f"job {job_id} belongs to environment {record.environment!r}, "
                f"not {self.environment.id!r}"
            )
        resolve_entry(entry)  # importable here, before bothering the cluster
        check_picklable(f"job {job_id}'s spec", record.spec)
        client = self.client
        module = entry.partition(":")[0] if ":" in entry else entry.rpartition(".")[0]
        if probe and module not in self._probed:
            probe_modules(client, [module], self.options.address)
            self._probed.add(module)
        launch = {"executor": "dask", "entry": entry}
        if record.state == "CREATED":
            store.fire(
                job_id, "queue", fields={"launch": json.dumps(launch)}, workspace=self.workspace
            )
        elif record.state != "QUEUED":
            raise InvalidTransition(f"job {job_id} is {record.state}; only new or queued jobs run")
        return self._send(client, job_id, entry)

    def _send(self, client: Any, job_id: str, entry: str) -> str:
        return self.send_call(job_id, run_job_task, job_id, entry, self.refs(), client=client)

    def send_call(self, job_id: str, function: Any, *args: Any, client: Any = None) -> str:
        """Submit ``function(*args)`` (a top-level function; plain arguments) as job
        ``job_id``'s task, fire-and-forget; the key. For kinds whose worker side manages the
        job's states itself (compute jobs run a local executor on the worker)."""
        from distributed import fire_and_forget

        key = job_key(job_id)
        future = (client or self.client).submit(
            function, *args, key=key, resources=self.resources(), pure=False
        )
        fire_and_forget(future)
        future.release()  # only references travel; the catalog, not the future, has the result
        return key

    def stop(self, job_id: str) -> JobRecord:
        """Stop a job: recorded in the catalog (what running tasks look at), and its pending
        future cancelled."""
        record = store.request_stop(job_id, workspace=self.workspace)
        self.cancel(job_id)
        return record

    def cancel(self, job_id: str) -> None:
        """Cancel the job's future: a pending task never runs (Dask does not interrupt a
        running one: that is the stop request's work)."""
        from distributed import Future

        client = self.client
        future: Any = Future(job_key(job_id), client=client)
        client.cancel([future], force=True)
        future.release()

    def wait(self, job_id: str, timeout: float | None = None, interval: float = 0.05) -> JobRecord:
        """Poll the catalog until the job is terminal (or ``timeout`` passed)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            record = store.get_job(job_id, workspace=self.workspace)
            if record.terminal or (deadline is not None and time.monotonic() >= deadline):
                return record
            time.sleep(interval)

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def reconcile_dask(
    workspace: Workspace | None = None, environments: dict[str, Environment] | None = None
) -> list[JobRecord]:
    """Settle the active jobs of dask environments that their scheduler does not hold (or whose
    scheduler does not answer): FAILED, or with ``requeue: true`` re-queued and re-submitted
    (when the scheduler answers; else left QUEUED for the next reconciliation). Returns the
    records changed."""
    ws = workspace or open_workspace()
    if environments is None:
        environments = load_environments(ws.settings)
    changed: list[JobRecord] = []
    for environment in environments.values():
        if environment.executor != "dask":
            continue
        with ws.read() as conn:
            rows = [
                row
                for row in queries.list_jobs(
                    conn, state=ACTIVE, environment=environment.id, limit=None
                )
                if row.machine == "job" and dask_launched(row.launch)
            ]
        if not rows:
            continue
        executor = DaskExecutor(environment, ws)
        known, why = _known_keys(executor)
        for row in rows:
            if known is not None and job_key(row.job_id) in known:
                continue
            record = _settle(executor, row, known is not None, why)
            if record is not None:
                changed.append(record)
    return changed


def _known_keys(executor: DaskExecutor) -> tuple[set[str] | None, str]:
    """The live keys of the environment's scheduler (None when it does not answer) and the
    reason a job missing from them is lost. A ``scheduler:`` is asked through a fresh client
    (connected within ``connect_timeout_s``; a cached client of a scheduler that died would
    wait for its reconnection instead); a ``cluster:`` through the client of its owner."""
    opts = executor.options
    try:
        if not opts.scheduler:
            return live_keys(executor.client), LOST_TASK
        client = dask_client.connect(opts.scheduler, opts.connect_timeout_s)
        try:
            return live_keys(client), LOST_TASK
        finally:
            client.close(timeout=opts.connect_timeout_s)
    except SchedulerUnreachable as exc:
        dask_client.forget(executor.environment)
        return None, f"its scheduler is gone ({exc})"
    except (OSError, TimeoutError) as exc:  # the scheduler went away while being asked
        dask_client.forget(executor.environment)
        return None, f"its scheduler is gone ({type(exc).__name__})"


def _settle(executor: DaskExecutor, row: Any, reachable: bool, why: str) -> JobRecord | None:
    ws = executor.workspace
    payload = {"reason": why}
    launch = json.loads(row.launch) if row.launch else None
    try:
        if executor.environment.requeue and launch and launch.get("entry"):
            record = None
            if row.state in ("PROVISIONING", "RUNNING"):
                record = store.fire(
                    row.job_id,
                    "requeue",
                    payload=payload,
                    fields={"pid": None, "host": None},
                    workspace=ws,
                )
            if reachable and row.state in ("QUEUED", "PROVISIONING", "RUNNING"):
                executor._send(executor.client, row.job_id, launch["entry"])
                record = record or store.get_job(row.job_id, workspace=ws)
            if record is not None:
                return record
            if row.state == "QUEUED":
                return None  # waits for a scheduler to come back
        return store.fire(row.job_id, "fail", error=f"lost: {why}", payload=payload, workspace=ws)
    except InvalidTransition:
        return None  # settled meanwhile by its task or another reconciler
