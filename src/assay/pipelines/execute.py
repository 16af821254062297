"""Executing a task graph: cache look-ups in waves, runs on worker threads, clean stops.

The scheduling thread (the caller's) keeps the graph's state. Tasks whose inputs are all known
form a *wave*: their processing names are computed and looked up in one query; cached tasks
release their dependents at once (a no-op re-run never touches a thread). The rest go to
``workers`` daemon threads, each running one task at a time as a job (``jobglue``), in process
or in a subprocess (``subproc``). Because a task's key holds its inputs' *content* hashes, a
task whose upstream re-ran but produced equal content is found cached (early cutoff).

A failing task stops new tasks from starting; tasks already running finish and stay cached;
then ``TaskFailed`` names the task, with its traceback in ``details``. Ctrl-C
(``KeyboardInterrupt`` in the scheduling thread) closes the commit gate, waits up to
``grace_s`` for outputs being stored, marks running tasks STOPPED and raises
``PipelineInterrupted``; worker threads are daemons, so a task that never returns does not keep
the process alive, and its output is never stored.

With ``workers=1`` (and no subprocess launcher) tasks run in the scheduling thread itself: no
hand-off between threads (milliseconds per task on a busy machine), and Ctrl-C interrupts the
task where it is (``run_inline`` records it STOPPED; a store already committing finishes
whole, one not yet committed never happens).
"""

from __future__ import annotations

import contextlib
import functools
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from assay.bundles.workspace import Workspace
from assay.catalog.pipeline_queries import TaskOutput
from assay.core.errors import PipelineInterrupted, TaskFailed
from assay.core.records import BundleRecord
from assay.pipelines import jobglue, planner
from assay.pipelines.graph import TaskGraph, TaskNode
from assay.pipelines.taskrun import CommitGate, TaskRunSpec, TaskStopped, run_task

_POLL_S = 0.25  # how often a blocked scheduler wakes to notice Ctrl-C (Queue.get is interruptible)


@dataclass
class TaskOutcome:
    """How one task of the run ended."""

    label: str
    bundle_name: str
    status: str  # cached, ran, failed, stopped, not run
    reason: str = ""
    processing_name: str | None = None
    uuid: str | None = None
    job_id: str | None = None
    error: str | None = None
    traceback: str | None = None
    seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "task": self.label,
            "bundle_name": self.bundle_name,
            "status": self.status,
            "reason": self.reason,
            "processing_name": self.processing_name,
            "uuid": self.uuid,
            "job_id": self.job_id,
            "error": self.error,
            "seconds": self.seconds,
        }


@dataclass
class RunReport:
    success: bool
    did_work: bool
    root_uuid: str | None
    outcomes: list[TaskOutcome] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        result: dict[str, int] = {}
        for outcome in self.outcomes:
            result[outcome.status] = result.get(outcome.status, 0) + 1
        return result


@dataclass(frozen=True)
class Progress:
    total: int
    done: int
    cached: int
    running: int
    failed: int


@dataclass(frozen=True)
class RunSettings:
    context: str
    ctx_id: int
    force: bool = False
    force_all: bool = False
    workers: int = 1
    output_tags: dict[str, str] = field(default_factory=dict)
    output_bundle_uuid: str | None = None
    code_version: dict[str, Any] = field(default_factory=dict)
    environment: str = "local"
    parent_job_id: str | None = None
    grace_s: float = 5.0
    push: bool = False
    pull: bool = False
    progress: Callable[[Progress], None] | None = None
    #: Runs one task elsewhere (a subprocess); None runs it in this process.
    launcher: Callable[[Workspace, TaskNode, TaskRunSpec, CommitGate], dict[str, Any]] | None = None
    owner: str | None = None  # the bundles' and task jobs' owner (None: this process's user)


@dataclass
class _Work:
    node: TaskNode
    spec: TaskRunSpec
    reason: str
    job_id: str
    known: dict[str, BundleRecord] = field(default_factory=dict)  # input records in hand


def execute(workspace: Workspace, graph: TaskGraph, settings: RunSettings) -> RunReport:
    """Run the graph (see the module docstring); returns the report or raises."""
    return _Scheduler(workspace, graph, settings).run()


class _Scheduler:
    def __init__(self, workspace: Workspace, graph: TaskGraph, settings: RunSettings) -> None:
        self.workspace = workspace
        self.graph = graph
        self.settings = settings
        self.dependents = graph.dependents()
        self.waiting = {node.key: len(set(node.deps.values())) for node in graph}
        self.outputs: dict[str, TaskOutput] = {}
        self.records: dict[str, BundleRecord] = {}  # made in this run, by uuid
        self.outcomes: dict[str, TaskOutcome] = {}
        self.ready: deque[str] = deque(k for k, n in self.waiting.items() if n == 0)
        self.running: dict[str, _Work] = {}
        self.gate = CommitGate()
        self.work: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self.results: queue.SimpleQueue[tuple[str, jobglue.JobOutcome]] = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []
        self.failure: TaskOutcome | None = None
        self.counts: dict[str, int] = {}  # outcomes by status, for the progress display
        self.index: planner.OutputIndex | None = None
        self.prepared = False

    # -- the loop -------------------------------------------------------------------------
    def run(self) -> RunReport:
        self.index = planner.load_index(self.workspace, self.settings.ctx_id, self.graph)
        try:
            while True:
                if self.ready and self.failure is None:
                    self._wave()
                    continue
                if not self.running:
                    break
                self._progress()
                try:
                    key, result = self.results.get(timeout=_POLL_S)
                except queue.Empty:
                    continue
                self._finished(key, result)
        except KeyboardInterrupt:
            self._interrupt()
            raise PipelineInterrupted(
                "interrupted: running tasks were stopped, finished outputs are kept; "
                "run again to resume",
                {"result": self._result(False)},
            ) from None
        finally:
            for _ in self.threads:
                self.work.put(None)
        self._progress()
        report = self._report()
        if self.failure is not None:
            failure = self.failure
            raise TaskFailed(
                f"task {failure.label} failed: {failure.error}; outputs of finished tasks "
                "are kept, so the next run resumes from here",
                {
                    "task": failure.label,
                    "traceback": failure.traceback,
                    "result": self._result(False),
                    "tasks": [o.as_dict() for o in report.outcomes],
                },
            )
        return report

    def _wave(self) -> None:
        settings = self.settings
        batch = [self.graph.nodes[key] for key in self.ready]
        self.ready.clear()
        names: dict[str, str] = {}
        lookups: list[tuple[str, str]] = []
        for node in batch:
            hashes = planner.input_hashes(node, self.outputs)
            assert hashes is not None  # every upstream finished before a node is ready
            names[node.key] = planner.node_processing_name(node, hashes)
            if not planner.is_forced(node, settings.force, settings.force_all):
                lookups.append((names[node.key], node.bundle_name))
        found = planner.lookup(self.workspace, settings.ctx_id, lookups, self.index)
        for node in batch:
            if self.failure is not None:
                break  # the rest of this wave is "not run"
            name = names[node.key]
            cached = found.get((name, node.bundle_name))
            if cached is not None:
                self.outcomes[node.key] = TaskOutcome(
                    node.label, node.bundle_name, "cached", "", name, cached.uuid
                )
                self.counts["cached"] = self.counts.get("cached", 0) + 1
                self._release(node.key, cached)
                continue
            if planner.is_forced(node, settings.force, settings.force_all):
                reason = planner.FORCED
            else:
                reason = planner.why_not_cached(self.workspace, settings.ctx_id, node, self.index)
            self._submit(node, name, reason)

    def _submit(self, node: TaskNode, name: str, reason: str) -> None:
        settings = self.settings
        inputs = {arg: record.uuid for arg, record in node.externals.items()}
        inputs.update({arg: self.outputs[key].uuid for arg, key in node.deps.items()})
        tags = dict(node.task._assay_tags)
        if node.is_root:
            tags.update(settings.output_tags)
            tags["root_task"] = "True"
        spec = TaskRunSpec(
            context=settings.context,
            bundle_name=node.bundle_name,
            processing_name=name,
            inputs=inputs,
            params=node.task.param_json(),
            code_version={
                **settings.code_version,
                "task": node.task.task_identity(),
                "code_hash": node.code_hash,
            },
            tags=tags,
            bundle_uuid=settings.output_bundle_uuid if node.is_root else None,
            push=settings.push,
            pull=settings.pull,
            owner=settings.owner,
        )
        known = {r.uuid: r for r in node.externals.values()}
        known.update({u: self.records[u] for u in inputs.values() if u in self.records})
        work = _Work(node, spec, reason, jobglue.task_job_id(settings.context, name), known)
        if not self.prepared:  # a run that finds everything cached schedules nothing
            jobglue.prepare(self.workspace)
            self.prepared = True
        self.running[node.key] = work
        if settings.workers == 1 and settings.launcher is None:
            # One worker: run here, in the scheduling thread. No hand-off between threads
            # (which costs milliseconds per task on a busy machine), and Ctrl-C interrupts
            # the task itself; run_inline records it STOPPED.
            try:
                outcome = self._execute(work)
            except KeyboardInterrupt:
                self._finished(
                    node.key, jobglue.JobOutcome(work.job_id, "STOPPED", None, "interrupted", None)
                )
                raise
            except Exception as error:  # the job layer refused (e.g. already running): report
                outcome = jobglue.JobOutcome(
                    work.job_id, "FAILED", None, jobglue.describe_error(error), None
                )
            self._finished(node.key, outcome)
            return
        if len(self.threads) < min(settings.workers, len(self.graph)):
            thread = threading.Thread(
                target=self._worker, name=f"assay-task-{len(self.threads)}", daemon=True
            )
            self.threads.append(thread)
            thread.start()
        self.work.put(work)

    def _release(self, key: str, output: TaskOutput) -> None:
        self.outputs[key] = output
        for downstream in self.dependents[key]:
            self.waiting[downstream] -= 1
            if self.waiting[downstream] == 0:
                self.ready.append(downstream)

    def _finished(self, key: str, result: jobglue.JobOutcome) -> None:
        work = self.running.pop(key)
        node = work.node
        outcome = TaskOutcome(
            node.label,
            node.bundle_name,
            {"FINISHED": "ran", "STOPPED": "stopped"}.get(result.state, "failed"),
            work.reason,
            work.spec.processing_name,
            job_id=work.job_id,
            error=result.error,
            traceback=result.traceback,
        )
        self.outcomes[key] = outcome
        self.counts[outcome.status] = self.counts.get(outcome.status, 0) + 1
        self._progress()
        if result.state == "FINISHED" and result.result is not None:
            outcome.uuid = result.result["uuid"]
            outcome.seconds = result.result.get("seconds")
            self._release(
                key,
                TaskOutput(
                    result.result["uuid"],
                    node.bundle_name,
                    work.spec.processing_name,
                    result.result["content_hash"],
                    time.time(),
                    "",
                ),
            )
        elif self.failure is None:
            self.failure = outcome

    # -- worker threads -------------------------------------------------------------------
    def _worker(self) -> None:
        while True:
            work = self.work.get()
            if work is None:
                return
            try:
                outcome = self._execute(work)
            except BaseException as error:  # the job layer itself failed: report, never hang
                outcome = jobglue.JobOutcome(
                    work.job_id, "FAILED", None, jobglue.describe_error(error), None
                )
            self.results.put((work.node.key, outcome))

    def _execute(self, work: _Work) -> jobglue.JobOutcome:
        return jobglue.run_task_job(
            self.workspace,
            work.job_id,
            {"task": work.node.label, "reason": work.reason, **work.spec.as_dict()},
            functools.partial(self._body, work),
            environment=self.settings.environment,
            parent_job_id=self.settings.parent_job_id,
        )

    def _body(self, work: _Work, stop_requested: Callable[[], bool]) -> dict[str, Any]:
        started = time.perf_counter()
        gate = self.gate
        work.node.task._assay_stop = lambda: gate.closed or stop_requested()
        launcher = self.settings.launcher
        if launcher is not None:
            result = launcher(self.workspace, work.node, work.spec, self.gate)
        else:

            @contextlib.contextmanager
            def store_guard() -> Iterator[None]:
                if stop_requested():  # ``assay jobs stop`` from elsewhere: store nothing
                    raise TaskStopped("the task's job was asked to stop")
                with gate.storing():
                    yield

            record = run_task(self.workspace, work.node.task, work.spec, store_guard, work.known)
            self.records[record.uuid] = record
            result = {"uuid": record.uuid, "content_hash": record.content_hash}
        result["seconds"] = round(time.perf_counter() - started, 6)
        return result

    # -- stopping and reporting -----------------------------------------------------------
    def _interrupt(self) -> None:
        self.gate.close(self.settings.grace_s)
        # Tasks that answer within the grace period report STOPPED (or FINISHED, when they
        # were storing); the others are marked STOPPED here and never store anything.
        deadline = time.monotonic() + self.settings.grace_s
        while self.running and time.monotonic() < deadline:
            try:
                key, result = self.results.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            self._finished(key, result)
        for key, work in list(self.running.items()):
            jobglue.mark_stopped(self.workspace, work.job_id)
            self._finished(
                key,
                jobglue.JobOutcome(work.job_id, "STOPPED", None, "interrupted", None),
            )

    def _result(self, success: bool) -> dict[str, bool]:
        return {
            "success": success,
            "did_work": any(o.status == "ran" for o in self.outcomes.values()),
        }

    def _report(self) -> RunReport:
        outcomes = [
            self.outcomes.get(key)
            or TaskOutcome(node.label, node.bundle_name, "not run", "an upstream task failed")
            for key, node in self.graph.nodes.items()
        ]
        root = self.outcomes.get(self.graph.root)
        result = self._result(self.failure is None)
        return RunReport(
            result["success"], result["did_work"], root.uuid if root else None, outcomes
        )

    def _progress(self) -> None:
        if self.settings.progress is None:
            return
        counts = self.counts
        self.settings.progress(
            Progress(
                total=len(self.graph),
                done=counts.get("ran", 0),
                cached=counts.get("cached", 0),
                running=len(self.running),
                failed=counts.get("failed", 0) + counts.get("stopped", 0),
            )
        )
