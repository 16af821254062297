"""The local executor: each job a supervised process group on this machine.

``LocalExecutor(environment).submit(job_id, argv, workdir=..., env=..., inputs=...)`` queues a
job (CREATED -> QUEUED; never refused) and returns at once. One supervisor thread per executor:

* starts queued jobs in FIFO order while the environment has a free slot: ``max_jobs`` counts
  the environment's PROVISIONING/RUNNING/PUBLISHING jobs in the catalog, so the limit holds
  across processes (the count and the claim QUEUED -> PROVISIONING are one transaction, under a
  per-environment lock on PostgreSQL); stages inputs (``assay.jobs.workdir``); starts the
  process group (``assay.jobs.process``), under bubblewrap when ``isolation: sandbox``
  (``assay.jobs.sandbox``); fires ``run``;
* every ``stop_poll_s`` reads the stop flags of its jobs (one query) and stops those asked
  (SIGTERM to the group, SIGKILL after ``stop_grace_s``) -> STOPPED;
* ends jobs past ``max_duration_s`` (SIGKILL to the group) -> TIMED_OUT;
* a heartbeat thread sets ``last_seen`` of all its jobs every ``heartbeat_s`` (one statement,
  no event rows), whatever the supervisor thread is busy with;
* copies new lines of ``logs/algorithm.log`` into ``log`` events (capped per job).

When a process exits, a completion thread calls the ``on_exit`` hook (control side, e.g. to
publish outputs; it may return a dict merged into the result) and fires the final event: exit 0
-> ``publish`` (when there is a hook) then ``finish``; non-zero -> ``fail`` with the exit status
and the log's last line. The hook may end the job itself (``store.fire_in`` in its own
transaction, say with the output bundle); the executor then leaves the job as the hook left it.

The catalog is the source of truth: ``wait`` reads the job's row. Building an executor runs
``reconcile`` (restart safety) and adopts re-queued jobs of its environment.
"""

from __future__ import annotations

import collections
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from assay.bundles.workspace import Workspace, open_workspace
from assay.catalog import job_queries as queries
from assay.core.errors import InvalidInput, InvalidTransition, JobNotFound
from assay.jobs import process, sandbox, store
from assay.jobs import workdir as jobdir
from assay.jobs.environments import Environment, load_environments
from assay.jobs.executors.launch import Launch
from assay.jobs.executors.logs import LogCopier, last_line
from assay.jobs.reconcile import reconcile
from assay.jobs.records import JobRecord

OnExit = Callable[[str, int, Path], "dict[str, Any] | None"]
ACTIVE = ("PROVISIONING", "RUNNING", "PUBLISHING")


@dataclass
class _Run:
    launch: Launch
    proc: subprocess.Popen[bytes]
    dirs: jobdir.JobDirs
    log: IO[bytes]
    deadline: float | None
    logs: LogCopier
    reason: str | None = None  # "stop" | "time_out" | "closed" | "lost" once decided
    kill_at: float | None = None


class LocalExecutor:
    """Runs jobs of one environment as process groups on this machine (see module doc)."""

    def __init__(
        self,
        environment: Environment,
        workspace: Workspace | None = None,
        *,
        on_exit: OnExit | None = None,
        tick_s: float = 0.02,
        stop_poll_s: float = 0.1,
        heartbeat_s: float = 2.0,
        stop_grace_s: float = 0.5,
        log_poll_s: float = 0.25,
        reconcile_on_start: bool = True,
    ) -> None:
        if environment.executor != "local":
            raise InvalidInput(
                f"environment {environment.id!r} uses the {environment.executor!r} executor, "
                "not 'local'"
            )
        if environment.isolation == "sandbox":
            sandbox.check_available()  # refuse now, never run unisolated
        self.environment = environment
        self.workspace = workspace or open_workspace()
        self.on_exit = on_exit
        self.tick_s, self.stop_poll_s, self.heartbeat_s = tick_s, stop_poll_s, heartbeat_s
        self.stop_grace_s, self.log_poll_s = stop_grace_s, log_poll_s
        self._pending: collections.deque[Launch] = collections.deque()
        self._running: dict[str, _Run] = {}
        self._finishing: set[str] = set()
        self._cond = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()
        if reconcile_on_start:
            known = load_environments(self.workspace.settings) | {environment.id: environment}
            reconcile(self.workspace, environments=known)
            self._adopt_requeued()

    # -- public -----------------------------------------------------------------------------
    def submit(
        self,
        job_id: str,
        argv: list[str],
        *,
        workdir: Path,
        env: Mapping[str, str] | None = None,
        inputs: Mapping[str, Path] | None = None,
        custom_data: Any = None,
    ) -> None:
        """Queue a CREATED job of this environment (-> QUEUED); returns at once.

        ``argv`` is any command (a script, ``python -m pkg.entry``); ``env`` is added to the
        job's environment (which never inherits the control side's); ``inputs`` maps keys to
        files or folders staged under ``inputs/<key>``; ``custom_data`` becomes
        ``inputs/algoCustomData.json``. Bad input (empty argv, a bad key, a missing input, a
        job of another environment) raises before anything changes.
        """
        if not argv or not all(isinstance(a, str) for a in argv):
            raise InvalidInput("argv must be a non-empty list of strings")
        inputs = {k: Path(v) for k, v in (inputs or {}).items()}
        jobdir.check_inputs(inputs)
        launch = Launch(
            job_id, list(argv), Path(workdir).absolute(), dict(env or {}), inputs, custom_data
        )
        with self.workspace.write() as conn:  # check and queue in one transaction
            row = queries.job(conn, job_id, for_update=True)
            if row is None:
                raise JobNotFound(f"no job {job_id}", {"job_id": job_id})
            if row.environment != self.environment.id:
                raise InvalidInput(
                    f"job {job_id} belongs to environment {row.environment!r}, "
                    f"not {self.environment.id!r}"
                )
            store.fire_in(
                conn,
                job_id,
                "queue",
                payload={"environment": self.environment.id},
                fields={
                    **store.this_process(),
                    "workdir": str(launch.workdir),
                    "launch": launch.as_json(),
                    "last_seen": time.time(),
                },
            )
        self._enqueue(launch)

    def wait(self, job_id: str, timeout: float | None = None) -> JobRecord:
        """The job's record once terminal (or when ``timeout`` passes: then not terminal)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            record = store.get_job(job_id, workspace=self.workspace)
            if record.terminal and job_id not in self._finishing:
                return record
            if deadline is not None and time.monotonic() >= deadline:
                return record
            with self._cond:
                self._cond.wait(0.05)

    def running(self) -> list[str]:
        with self._cond:
            return list(self._running)

    def queued(self) -> list[str]:
        with self._cond:
            return [launch.job_id for launch in self._pending]

    def close(self, *, wait: bool = True, timeout: float | None = None) -> None:
        """Stop supervising. ``wait``: let queued and running jobs end first; otherwise running
        jobs are killed and fail ("executor closed"), queued ones fail without starting."""
        if wait:
            deadline = None if timeout is None else time.monotonic() + timeout
            with self._cond:
                while self._pending or self._running or self._finishing:
                    if deadline is not None and time.monotonic() >= deadline:
                        break
                    self._cond.wait(0.05)
        with self._cond:
            self._closing = True
            pending, self._pending = list(self._pending), collections.deque()
            self._cond.notify_all()
        for launch in pending:
            self._fire_quietly(launch.job_id, "fail", error="the executor closed before it started")
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(wait=exc[0] is None)

    # -- queue --------------------------------------------------------------------------------
    def _enqueue(self, launch: Launch) -> None:
        with self._cond:
            if self._closing:
                raise InvalidInput("the executor is closed")
            self._pending.append(launch)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name=f"assay-executor-{self.environment.id}", daemon=True
                )
                self._thread.start()
                threading.Thread(
                    target=self._beat, name=f"assay-heartbeat-{self.environment.id}", daemon=True
                ).start()
            self._cond.notify_all()

    def _adopt_requeued(self) -> None:
        with self.workspace.write() as conn:
            rows = queries.unowned_queued(conn, self.environment.id)
            for row in rows:
                queries.update_job(
                    conn,
                    row.job_id,
                    {**store.this_process(), "last_seen": time.time()},
                    states=["QUEUED"],
                )
        for row in rows:
            record = store.get_job(row.job_id, workspace=self.workspace)
            self._enqueue(Launch.from_record(record))

    # -- the supervisor thread -------------------------------------------------------------------
    def _loop(self) -> None:
        last_stop_poll = last_logs = 0.0
        while True:
            with self._cond:
                if self._closing and not self._running:
                    self._stopped.set()
                    return
                self._cond.wait(self.tick_s)
                closing = self._closing
            now = time.monotonic()
            if not closing:
                self._start_pending()
            self._check_processes(now, kill_all=closing)
            if now - last_stop_poll >= self.stop_poll_s:
                last_stop_poll = now
                self._poll_stops(now)
            if now - last_logs >= self.log_poll_s:
                last_logs = now
                for run in list(self._running.values()):
                    self._copy_logs(run, final=False)

    def _start_pending(self) -> None:
        while True:
            with self._cond:
                if not self._pending:
                    return
                launch = self._pending[0]
            claimed = self._claim(launch.job_id)
            if claimed is None:
                return  # no free slot: stays QUEUED, first in line
            with self._cond:
                self._pending.popleft()
            if claimed:
                self._start(launch)

    def _claim(self, job_id: str) -> bool | None:
        """QUEUED -> PROVISIONING if the environment has a free slot: True; None when full;
        False when the job is no longer QUEUED (stopped while waiting)."""
        try:
            with self.workspace.write() as conn:
                queries.lock_environment(conn, self.environment.id)
                if queries.count_in_states(conn, self.environment.id, ACTIVE) >= (
                    self.environment.max_jobs
                ):
                    return None
                store.fire_in(
                    conn,
                    job_id,
                    "provision",
                    fields={**store.this_process(), "last_seen": time.time()},
                )
                return True
        except (InvalidTransition, JobNotFound):
            self._notify()
            return False

    def _start(self, launch: Launch) -> None:
        sandboxed = self.environment.isolation == "sandbox"
        try:
            dirs, binds = jobdir.prepare(
                launch.workdir, launch.inputs, launch.custom_data, copy_inputs=not sandboxed
            )
        except (OSError, InvalidInput) as exc:
            self._fire_quietly(launch.job_id, "provision_fail", error=f"staging inputs: {exc}")
            return
        env = jobdir.job_environment(dirs, launch.job_id, sorted(launch.inputs), launch.env)
        argv = launch.argv
        if sandboxed:
            argv = sandbox.bwrap_argv(
                argv,
                workdir=dirs.root,
                binds=binds,
                network=self.environment.network,
                ro_paths=[str(p) for p in self.environment.extra.get("ro_paths", [])],
                hidden=[self.workspace.settings.home],
            )
        log = open(dirs.algorithm_log, "ab")  # noqa: SIM115 -- closed when the job ends
        limits = process.Limits(
            cpu=self.environment.cpu,
            ram_gb=self.environment.ram_gb,
            disk_gb=self.environment.disk_gb,
            max_duration_s=self.environment.max_duration_s,
        )
        try:
            proc = process.spawn(
                argv, cwd=dirs.root, env=env, limits=limits, stdout=log, stderr=subprocess.STDOUT
            )
        except OSError as exc:
            log.close()
            self._fire_quietly(launch.job_id, "fail", error=f"cannot start {argv[0]!r}: {exc}")
            return
        run = _Run(launch, proc, dirs, log, None, LogCopier(dirs.algorithm_log))
        with self._cond:
            self._running[launch.job_id] = run
        try:
            store.fire(
                launch.job_id,
                "run",
                payload={"argv": launch.argv, "sandbox": sandboxed},
                fields={**store.this_process(), "pgid": proc.pid, "last_seen": time.time()},
                workspace=self.workspace,
            )
        except (InvalidTransition, JobNotFound):
            run.reason = "lost"  # ended elsewhere meanwhile (reconcile): kill, record nothing
            process.kill_group(proc.pid)
        # The wall clock counts from the recorded start, so finished - started >= the limit.
        duration = self.environment.max_duration_s
        run.deadline = None if duration is None else time.monotonic() + duration
        # Started only now, so a quick exit cannot be recorded before the run transition.
        threading.Thread(
            target=self._await_exit,
            args=(run,),
            name=f"assay-job-{launch.job_id[:8]}",
            daemon=True,
        ).start()

    def _await_exit(self, run: _Run) -> None:
        """Wait for the job's process (a thread per job: exits are seen at once, not at the
        next tick), kill what is left of its group, then record the outcome."""
        returncode = run.proc.wait()
        process.kill_group(run.proc.pid)  # leftovers of the group
        job_id = run.launch.job_id
        with self._cond:
            self._running.pop(job_id, None)
            self._finishing.add(job_id)
        self._complete(run, returncode)

    def _check_processes(self, now: float, *, kill_all: bool) -> None:
        for run in list(self._running.values()):
            if kill_all and run.reason is None:
                run.reason = "closed"
                process.kill_group(run.proc.pid)
            elif run.deadline is not None and now >= run.deadline and run.reason is None:
                run.reason = "time_out"
                process.kill_group(run.proc.pid)
            elif run.kill_at is not None and now >= run.kill_at:
                run.kill_at = None
                process.kill_group(run.proc.pid)

    def _poll_stops(self, now: float) -> None:
        with self._cond:
            ids = list(self._running) + [launch.job_id for launch in self._pending]
        if not ids:
            return
        with self.workspace.read() as conn:
            states = queries.stop_states(conn, ids)
        for job_id, (state, stop_requested) in states.items():
            run = self._running.get(job_id)
            if run is not None and stop_requested and run.reason is None:
                run.reason = "stop"
                process.kill_group(run.proc.pid, signal.SIGTERM)
                run.kill_at = now + self.stop_grace_s
            elif run is None and state not in ("QUEUED", "CREATED"):
                with self._cond:  # stopped (or ended) while queued: forget it
                    self._pending = collections.deque(
                        launch for launch in self._pending if launch.job_id != job_id
                    )
                self._notify()

    def _beat(self) -> None:
        """Heartbeats in their own thread, so staging a big input (supervisor thread) or a long
        on_exit publish (waiter thread) never lets a live job look dead to reconciliation."""
        while not self._stopped.wait(self.heartbeat_s):
            self._heartbeat()

    def _heartbeat(self) -> None:
        with self._cond:
            ids = [*self._running, *self._finishing, *(launch.job_id for launch in self._pending)]
        if ids:
            with self.workspace.write() as conn:
                queries.touch_jobs(conn, ids, time.time(), ("QUEUED", *ACTIVE))

    def _copy_logs(self, run: _Run, *, final: bool) -> None:
        """New lines of the job's log as ``log`` events (all that is left if final)."""
        items = run.logs.take(final=final)
        if items:
            try:
                store.append_events(run.launch.job_id, items, workspace=self.workspace)
            except JobNotFound:
                return

    # -- completion -----------------------------------------------------------------------------
    def _complete(self, run: _Run, returncode: int) -> None:
        job_id = run.launch.job_id
        try:
            run.log.close()
            self._copy_logs(run, final=True)
            self._finish(run, returncode)
        finally:
            with self._cond:
                self._finishing.discard(job_id)
                self._cond.notify_all()

    def _finish(self, run: _Run, returncode: int) -> None:
        job_id, dirs = run.launch.job_id, run.dirs
        if run.reason == "lost":
            return
        base = {"returncode": returncode, "outputs": jobdir.output_files(dirs)}
        succeeded = returncode == 0 and run.reason is None
        if succeeded and self.on_exit is not None and not self._fire_quietly(job_id, "publish"):
            return
        extra: dict[str, Any] | None = None
        if self.on_exit is not None:
            try:
                extra = self.on_exit(job_id, returncode, dirs.root)
            except Exception as exc:
                error, trace = store.format_exception(exc)
                if succeeded:
                    self._fire_quietly(
                        job_id, "fail", error=f"on_exit: {error}", payload={"traceback": trace}
                    )
                    return
                store.append_event(
                    job_id,
                    "on_exit_error",
                    {"error": error, "traceback": trace},
                    workspace=self.workspace,
                )
        if run.reason == "stop":
            self._fire_quietly(job_id, "stop", payload=base)
        elif run.reason == "time_out":
            limit = self.environment.max_duration_s
            self._fire_quietly(
                job_id,
                "time_out",
                payload=base,
                error=f"ran past max_duration_s={limit:g} of environment {self.environment.id!r}"
                if limit
                else "timed out",
            )
        elif run.reason == "closed":
            self._fire_quietly(
                job_id, "fail", payload=base, error="the executor closed while it ran"
            )
        elif returncode != 0:
            self._fire_quietly(
                job_id,
                "fail",
                payload=base,
                error=_exit_error(returncode, dirs),
            )
        else:
            self._fire_quietly(job_id, "finish", result={**base, **(extra or {})})

    def _fire_quietly(self, job_id: str, event: str, **kwargs: Any) -> bool:
        """Fire; False when another process (or the on_exit hook) already moved the job."""
        try:
            store.fire(job_id, event, workspace=self.workspace, **kwargs)
        except (InvalidTransition, JobNotFound):
            return False
        finally:
            self._notify()
        return True

    def _notify(self) -> None:
        with self._cond:
            self._cond.notify_all()


def _exit_error(returncode: int, dirs: jobdir.JobDirs) -> str:
    line = last_line(dirs.algorithm_log)
    return f"the job's process {process.describe_exit(returncode)}" + (f": {line}" if line else "")
