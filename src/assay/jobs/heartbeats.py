"""One heartbeat thread per process for every inline job it runs.

A pipeline of 1,000 in-process tasks used to start and join one thread per task (a thread
start costs ~0.1-10 ms on a loaded machine, more than the task's own bookkeeping). Here a
single daemon thread, started on first use, beats each registered job every ``interval``
seconds; ``beating(job_id, ...)`` registers the job for the duration of a ``with`` block.
A forked child starts with no registrations and no thread (the parent's thread does not exist
there); its first ``beating`` starts its own.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from assay.jobs import store

if TYPE_CHECKING:
    from assay.bundles.workspace import Workspace

log = logging.getLogger(__name__)


class _Beater:
    """The process's heartbeat thread and its due-time heap of registered jobs."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: list[tuple[float, int]] = []  # (due time, token), a heap
        self._jobs: dict[int, tuple[str, Workspace, float]] = {}
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None

    def register(self, job_id: str, workspace: Workspace, interval: float) -> int:
        with self._cond:
            token = next(self._tokens)
            self._jobs[token] = (job_id, workspace, interval)
            heapq.heappush(self._due, (time.monotonic() + interval, token))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="assay-heartbeats", daemon=True
                )
                self._thread.start()
            self._cond.notify()
            return token

    def unregister(self, token: int) -> None:
        with self._cond:
            self._jobs.pop(token, None)  # its heap entry is dropped when it comes due

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._due:
                    self._cond.wait()
                due, token = self._due[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._due)
                entry = self._jobs.get(token)
                if entry is None:
                    continue
                job_id, workspace, interval = entry
                heapq.heappush(self._due, (time.monotonic() + interval, token))
            self._beat(job_id, workspace)

    @staticmethod
    def _beat(job_id: str, workspace: Workspace) -> None:
        try:
            store.heartbeat(job_id, os.getpid(), workspace=workspace)
        except Exception:  # a missed beat is retried next interval; the thread must live on
            log.warning("heartbeat of job %s failed", job_id, exc_info=True)


_beater = _Beater()


def _reset_after_fork() -> None:
    global _beater
    _beater = _Beater()


os.register_at_fork(after_in_child=_reset_after_fork)


@contextlib.contextmanager
def beating(job_id: str, workspace: Workspace, interval: float) -> Iterator[None]:
    """Heartbeat ``job_id`` every ``interval`` seconds while the body runs."""
    beater = _beater
    token = beater.register(job_id, workspace, interval)
    try:
        yield
    finally:
        beater.unregister(token)
