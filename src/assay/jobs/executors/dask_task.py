"""The worker side of the Dask executor: ``run_job_task(job_id, entry, refs)``.

A top-level function taking only plain references (the job id, the dotted entry point, the
catalog URL and home), so nothing but those strings travels through Dask. It opens the catalog
and moves the job through ``jobs.store`` itself (``run`` -> ``finish``/``fail``/``stop``, via
``runner.run_inline``); log records emitted by the entry's thread, and what it prints, become
``log`` events of the job (one row each, at once: a follower sees them as they happen). What it
returns (the final state name) is only informative: the catalog is the truth.

* A job already terminal (a re-submission of finished work) returns at once, running nothing.
* A job found PROVISIONING/RUNNING/PUBLISHING means an earlier attempt of this task ran on a
  worker that died (Dask re-runs a task only then): with ``requeue`` it is re-queued and run
  here; without, it is FAILED ("worker lost") and not run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from assay.bundles.workspace import Workspace, open_workspace
from assay.core.errors import InvalidTransition, TaskImportFailed
from assay.core.settings import load_settings
from assay.jobs import runner, store, wire

LOST_STATES = ("PROVISIONING", "RUNNING", "PUBLISHING")


def resolve_entry(entry: str) -> Callable[..., Any]:
    """``pkg.module:function`` or ``pkg.module.function`` -> the function."""
    module_name, sep, attr = entry.partition(":")
    if not sep:
        module_name, _, attr = entry.rpartition(".")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise TaskImportFailed(f"entry point {entry!r}: {type(exc).__name__}: {exc}") from None
    if not callable(target):
        raise TaskImportFailed(f"entry point {entry!r} is not callable")
    return target


def worker_workspace(refs: dict[str, Any]) -> Workspace:
    settings = load_settings(refs.get("home"))
    if refs.get("catalog_url"):
        settings = dataclasses.replace(settings, catalog_url=refs["catalog_url"])
    return open_workspace(settings)


class _JobLogHandler(logging.Handler):
    """Log records of one thread -> ``log`` events of one job (the wire's record fields, so an
    asker re-emits them with their logger and level, plus ``level`` for ``assay jobs logs``)."""

    def __init__(self, job_id: str, workspace: Workspace) -> None:
        super().__init__(logging.INFO)
        self.job_id = job_id
        self.workspace = workspace
        self.thread = threading.get_ident()

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread or record.name.startswith(("distributed", "assay.jobs")):
            return
        self.line(wire.record_payload(record))

    def line(self, payload: dict[str, Any]) -> None:
        payload["level"] = str(payload.get("levelname") or "INFO").lower()
        store.append_event(self.job_id, "log", payload, workspace=self.workspace)


class _ThreadStreams:
    """``sys.stdout`` / ``sys.stderr`` of a worker process, routed by thread: what a job's
    thread prints becomes log lines of that job (stdout at INFO, stderr at WARNING), whole lines
    at a time; every other thread writes to the original stream. Installed once per process
    (several tasks may run at once on a worker's threads); C-level writes to fd 1/2 are not
    seen (they go to the worker's own output)."""

    _lock = threading.Lock()
    _sinks: dict[int, Callable[[str, int, str], None]] = {}
    _busy: set[int] = set()
    _installed = False

    class _Stream:
        def __init__(self, original: Any, name: str, level: int) -> None:
            self.original = original
            self.name = name
            self.level = level
            self.buffers: dict[int, str] = {}

        def write(self, text: str) -> int:
            thread = threading.get_ident()
            sink = _ThreadStreams._sinks.get(thread)
            if sink is None or thread in _ThreadStreams._busy:
                self.original.write(text)  # not a job's thread, or the sink's own writing
                return len(text)
            pending = self.buffers.get(thread, "") + text
            *lines, rest = pending.split("\n")
            self.buffers[thread] = rest
            _ThreadStreams._busy.add(thread)
            try:
                for line in lines:
                    sink(self.name, self.level, line)
            finally:
                _ThreadStreams._busy.discard(thread)
            return len(text)

        def flush_thread(self, thread: int) -> None:
            rest = self.buffers.pop(thread, "")
            sink = _ThreadStreams._sinks.get(thread)
            if rest and sink is not None:
                sink(self.name, self.level, rest)

        def flush(self) -> None:
            self.original.flush()

        def __getattr__(self, name: str) -> Any:
            return getattr(self.original, name)

    @classmethod
    @contextlib.contextmanager
    def capture(cls, sink: Callable[[str, int, str], None]) -> Iterator[None]:
        thread = threading.get_ident()
        with cls._lock:
            if not cls._installed:
                sys.stdout = cls._Stream(sys.stdout, "stdout", logging.INFO)
                sys.stderr = cls._Stream(sys.stderr, "stderr", logging.WARNING)
                cls._installed = True
            cls._sinks[thread] = sink
        try:
            yield
        finally:
            for stream in (sys.stdout, sys.stderr):
                if isinstance(stream, cls._Stream):
                    stream.flush_thread(thread)
            with cls._lock:
                cls._sinks.pop(thread, None)


@contextlib.contextmanager
def _logs_to_job(job_id: str, workspace: Workspace) -> Iterator[None]:
    """Log records and prints of this thread become the job's ``log`` events."""
    handler = _JobLogHandler(job_id, workspace)

    def printed(name: str, level: int, line: str) -> None:
        handler.line(
            {
                "name": name,
                "levelno": level,
                "levelname": logging.getLevelName(level),
                "message": wire.cap(line.rstrip("\r")),
                "created": time.time(),
            }
        )

    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    try:
        with _ThreadStreams.capture(printed):
            yield
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def _take_over_lost(job_id: str, state: str, refs: dict[str, Any], ws: Workspace) -> bool:
    """An earlier attempt died with its worker: re-queue (True: run it here) or fail."""
    reason = {"reason": "the worker running an earlier attempt was lost"}
    try:
        if refs.get("requeue") and state in ("PROVISIONING", "RUNNING"):
            store.fire(
                job_id, "requeue", payload=reason, fields={"pid": None, "host": None}, workspace=ws
            )
            return True
        store.fire(
            job_id, "fail", error="worker lost: " + reason["reason"], payload=reason, workspace=ws
        )
    except InvalidTransition:
        return False  # another process settled it first
    return False


def run_job_task(job_id: str, entry: str, refs: dict[str, Any]) -> str:
    """Run job ``job_id`` by calling ``entry(ctx, spec)`` on this worker; its final state."""
    ws = worker_workspace(refs)
    record = store.get_job(job_id, workspace=ws)
    if record.terminal:
        return record.state
    if record.state in LOST_STATES and not _take_over_lost(job_id, record.state, refs, ws):
        return store.get_job(job_id, workspace=ws).state
    try:
        function = resolve_entry(entry)
    except TaskImportFailed as exc:
        store.fire(job_id, "fail", error=f"TaskImportFailed: {exc}", workspace=ws)
        return "FAILED"
    spec = record.spec

    def body(ctx: runner.JobContext) -> dict[str, Any] | None:
        return function(ctx, spec)

    with _logs_to_job(job_id, ws):
        final = runner.run_inline(job_id, body, workspace=ws)
    return final.state


def importable(module_name: str) -> str | None:
    """Run on each worker by the submit-time probe: None, or why ``module_name`` fails."""
    try:
        importlib.import_module(module_name)
    except Exception as exc:  # the probe reports any import failure, whatever its type
        return f"{type(exc).__name__}: {exc}"
    return None
