"""Supervising a job's worker process: start it, read it, watch it, stop it.

``WorkerProcess`` starts ``python -m assay.jobs.worker ENTRY`` in a new process group (so the
worker and anything it starts can be killed together), hands it a task, and reads its stdout
(wire events) and stderr (kept as a bounded tail for error messages) continuously on two
threads, so a worker printing megabytes can neither fill a pipe and stall nor grow this
process's memory: events pass through a bounded queue, and a slow consumer slows the worker
down instead.

A one-task worker may instead be forked by a fork server (``assay.jobs.forkserver``): the same
pipes, its own process group, its exit status told by the server; it is watched the same way.

``WorkerPool`` keeps idle pool workers (``--serve``) by an opaque key whose first element is
the key's *family* (say, a service folder): a worker is reused only after a clean result; one
that crashed, hung, timed out, was stopped or whose task raised is killed; acquiring a new key
of a family stops the family's idle workers of other keys (an older revision).

``supervise`` is the loop between: it passes each event to the kind (``WorkerTask.on_event``)
and stops the worker (``killpg`` SIGKILL) and asks the kind for the exception to raise when:

- the job's ``timeout`` passes (``on_timeout``);
- nothing, not even a heartbeat, arrives for ``max_silence`` seconds (``on_silence``: the worker
  hangs, e.g. stopped or stuck in C code holding the GIL);
- the process ends without a last event (``on_exit`` with its exit status);
- a stop is requested: in this process (``stop_event``) or from any other through the job's
  ``stop_requested`` column, read at every flush of the job's recorder and at least every
  ``POLL_SECONDS`` (``on_stop``);
- another process ended the job first (a stop before it ran, reconciliation): a transition
  of ours is refused or the job is found terminal (``on_lost``: that outcome stands).

While the worker lives, the recorder ``touch``es the job, so ``last_seen`` says the supervisor
is watching (reconciliation fails jobs whose supervisor died).
"""

from __future__ import annotations

import atexit
import collections
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, Protocol

from assay.core.errors import InvalidTransition
from assay.jobs import wire
from assay.jobs.recorder import JobRecorder

if TYPE_CHECKING:
    from assay.jobs.forkserver import ForkedChild

_EOF = object()
_QUEUE_SIZE = 10_000
_STDERR_TAIL = 8 * 1024
_REAP_SECONDS = 5.0
POLL_SECONDS = 0.2
STARTUP_ALLOWANCE = 60.0


class WorkerProcess:
    """A worker process and the two threads reading its stdout (events) and stderr (a tail).

    A one-task worker (``reusable=False``) is told its task and exits after answering; a pool
    worker (``reusable=True``, ``--serve``) answers tasks one after another. ``forked``: a
    one-task worker a fork server started already (``assay.jobs.forkserver``), watched the same
    way as one started here.
    """

    def __init__(
        self,
        entry: str,
        reusable: bool,
        cwd: str | None,
        job_id: str = "",
        forked: ForkedChild | None = None,
    ) -> None:
        self.reusable = reusable
        arguments = [entry, "--serve"] if reusable else [entry, job_id]
        self.process: subprocess.Popen[bytes] | ForkedChild = forked or subprocess.Popen(
            [sys.executable, "-m", "assay.jobs.worker", *arguments],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
        self.pid = self.process.pid
        self.events: queue.Queue[Any] = queue.Queue(maxsize=_QUEUE_SIZE)
        self._stderr: collections.deque[bytes] = collections.deque()
        self._stderr_size = 0
        self.threads = [
            threading.Thread(target=self._read_events, name="assay-events", daemon=True),
            threading.Thread(target=self._read_stderr, name="assay-stderr", daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    def send(self, task: dict[str, Any]) -> None:
        """Hand the worker a task (a pool worker's stdin stays open for the next one)."""
        data = json.dumps(task, ensure_ascii=False).encode()
        stdin = self.process.stdin
        assert stdin is not None
        try:
            if self.reusable:
                stdin.write(data + b"\n")
                stdin.flush()
            else:
                stdin.write(data)
                stdin.close()
        except (BrokenPipeError, OSError, ValueError):
            return  # the worker died; the supervision loop sees its end of file and says how

    def alive(self) -> bool:
        return self.process.poll() is None

    def idle_and_alive(self) -> bool:
        """True when the worker is running and has said nothing since its last answer."""
        if not self.alive():
            return False
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return True
            if event is _EOF:
                return False

    def _read_events(self) -> None:
        assert self.process.stdout is not None
        try:
            for line in self.process.stdout:
                event = wire.decode(line)
                if event is None:
                    text = line.decode("utf-8", "replace").rstrip()
                    event = {
                        "kind": "log_record",
                        "at": time.time(),
                        "payload": {
                            "name": "stdout",
                            "levelno": logging.INFO,
                            "levelname": "INFO",
                            "message": wire.cap(text),
                        },
                    }
                self.events.put(event)
        except (OSError, ValueError):
            pass  # the pipe closed under us: the end of file below says so
        finally:
            self.events.put(_EOF)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        stream = self.process.stderr
        try:
            while True:
                chunk = stream.read1(64 * 1024)  # type: ignore[attr-defined]
                if not chunk:
                    break
                self._stderr.append(chunk)
                self._stderr_size += len(chunk)
                while self._stderr_size > _STDERR_TAIL and len(self._stderr) > 1:
                    self._stderr_size -= len(self._stderr.popleft())
        except (OSError, ValueError):
            return  # closed by close(); the tail so far is what there is

    def stderr_tail(self) -> str:
        text = b"".join(self._stderr).decode("utf-8", "replace").strip()
        return text[-2000:]

    def kill(self) -> None:
        """SIGKILL the worker's process group (the worker and whatever its task started)."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            try:
                self.process.kill()
            except OSError:
                return  # already gone

    def reap(self) -> int | None:
        """The exit status; None when it is unknown (the fork server that started the worker
        died before it could say)."""
        try:
            code = self.process.wait(timeout=_REAP_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.process.wait()
        return None if getattr(self.process, "status_lost", False) else code

    def close(self) -> None:
        """Kill, reap and stop reading."""
        self.kill()
        self.reap()
        for thread in self.threads:
            thread.join(1.0)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                continue  # closing a broken pipe: nothing left to release
        release = getattr(self.process, "release", None)
        if release is not None:
            release()  # a forked worker's reply socket

    def close_later(self) -> None:
        """Kill now; reap and join the readers on a thread (an answer need not wait for it)."""
        self.kill()
        threading.Thread(target=self.close, name="assay-reap", daemon=True).start()


class WorkerPool:
    """Idle pool workers of this process, at most ``size()`` per key (see the module doc).

    Every pool worker is killed when this process exits (``atexit``); one whose supervisor dies
    without that sees its stdin close and kills its own process group.
    """

    def __init__(self, entry: str, size: Callable[[], int]) -> None:
        self.entry = entry
        self.size = size
        self._idle: dict[tuple[Hashable, ...], list[WorkerProcess]] = {}
        self._busy: set[WorkerProcess] = set()
        self._lock = threading.Lock()
        self._registered = False

    def acquire(self, key: tuple[Hashable, ...], cwd: str | None) -> WorkerProcess:
        """An idle worker for ``key``, or a new pool worker started for it."""
        stale: list[WorkerProcess] = []
        taken: WorkerProcess | None = None
        with self._lock:
            idle = self._idle.get(key, [])
            while idle and taken is None:
                candidate = idle.pop()  # the most recently used
                if candidate.idle_and_alive():
                    taken = candidate
                else:
                    stale.append(candidate)
            if taken is None:
                for other in [k for k in self._idle if k[0] == key[0] and k != key]:
                    stale.extend(self._idle.pop(other))  # an older revision of this family
            if taken is not None:
                self._busy.add(taken)
        for worker in stale:
            worker.close()
        if taken is not None:
            return taken
        worker = WorkerProcess(self.entry, True, cwd)
        with self._lock:
            self._busy.add(worker)
            if not self._registered:
                self._registered = True
                atexit.register(self.close)
        return worker

    def release(self, worker: WorkerProcess, key: tuple[Hashable, ...]) -> None:
        """Keep a worker that answered cleanly for the next task, if there is room."""
        with self._lock:
            self._busy.discard(worker)
            idle = self._idle.setdefault(key, [])
            if len(idle) < self.size() and worker.alive():
                idle.append(worker)
                return
        worker.close_later()  # one more than the pool keeps

    def discard(self, worker: WorkerProcess) -> None:
        with self._lock:
            self._busy.discard(worker)
        worker.close()

    def close(self) -> None:
        """Stop every pool worker of this process, idle or busy."""
        with self._lock:
            workers = [w for idle in self._idle.values() for w in idle] + list(self._busy)
            self._idle, self._busy = {}, set()
        for worker in workers:
            worker.kill()
        for worker in workers:
            worker.close()

    def pids(self) -> list[int]:
        with self._lock:
            return [w.pid for idle in self._idle.values() for w in idle] + [
                w.pid for w in self._busy
            ]

    def forget(self) -> None:
        """In a forked child: these workers belong to the parent."""
        self._idle, self._busy = {}, set()
        self._lock = threading.Lock()


class Done:
    """Returned by ``WorkerTask.on_event`` to end the loop with ``value``."""

    def __init__(self, value: Any) -> None:
        self.value = value


class WorkerTask(Protocol):
    """What a job kind supplies to ``supervise``: it records and shapes; the loop watches."""

    def on_event(self, event: dict[str, Any]) -> Done | None: ...
    def on_timeout(self, timeout: float) -> BaseException: ...
    def on_silence(self, seconds: float) -> BaseException: ...
    def on_exit(self, code: int | None, stderr_tail: str) -> BaseException: ...
    def on_stop(self, by: str) -> BaseException: ...
    def on_lost(self, error: InvalidTransition) -> BaseException: ...


def supervise(
    worker: WorkerProcess,
    task: WorkerTask,
    recorder: JobRecorder,
    *,
    timeout: float | None,
    max_silence: float,
    stop_event: threading.Event,
    started: float | None = None,
) -> Any:
    """Pass the worker's events to ``task`` until it is ``Done``; raise what ``task`` says when
    the worker times out, goes silent, exits or is stopped (it is killed first). ``started``:
    when the job's ``timeout`` began (``time.monotonic()``; default now), for a job that waited
    before its worker started (for a fork server's imports)."""
    try:
        return _loop(worker, task, recorder, timeout, max_silence, stop_event, started)
    except InvalidTransition as lost:
        # Another process ended the job first (a stop before it ran, reconciliation): its
        # outcome stands; the worker's work is not wanted any more.
        worker.kill()
        raise task.on_lost(lost) from None


def _loop(
    worker: WorkerProcess,
    task: WorkerTask,
    recorder: JobRecorder,
    timeout: float | None,
    max_silence: float,
    stop_event: threading.Event,
    clock: float | None,
) -> Any:
    started = time.monotonic()
    deadline = (clock or started) + timeout if timeout is not None else None
    last_heard = started
    next_poll = started + POLL_SECONDS
    # Until the worker has started (its imports can take seconds on a busy machine), allow more
    # silence: a worker that dies while starting is still seen at once (end of file).
    allowed = max(max_silence, STARTUP_ALLOWANCE)
    while True:
        now = time.monotonic()
        if stop_event.is_set():
            worker.kill()
            raise task.on_stop("this process")
        if now >= next_poll:
            next_poll = now + POLL_SECONDS
            recorder.touch()  # the supervisor is watching, whether the worker speaks or not
            record = recorder.poll()
            if record is not None and record.terminal:
                raise InvalidTransition(f"job {record.job_id} ended {record.state} elsewhere")
            if recorder.stop_requested:
                worker.kill()
                raise task.on_stop("a stop request")
        if deadline is not None and now >= deadline:
            worker.kill()
            raise task.on_timeout(timeout or 0.0)
        if now - last_heard >= allowed:
            worker.kill()
            raise task.on_silence(allowed)
        flush_in = recorder.flush_due_in()
        if flush_in is not None and flush_in <= 0:
            recorder.flush()
            flush_in = None
        wait_for = min(
            POLL_SECONDS,
            next_poll - now,
            allowed - (now - last_heard),
            (deadline - now) if deadline is not None else POLL_SECONDS,
            flush_in if flush_in is not None else POLL_SECONDS,
        )
        try:
            event = worker.events.get(timeout=max(0.001, wait_for))
        except queue.Empty:
            continue
        if event is _EOF:
            if stop_event.is_set():
                raise task.on_stop("this process")
            code = worker.reap()
            recorder.poll()
            if recorder.stop_requested:
                raise task.on_stop("a stop request")
            raise task.on_exit(code, worker.stderr_tail())
        last_heard = time.monotonic()
        recorder.touch()
        if event["kind"] == "delivery":
            allowed = max_silence
        outcome = task.on_event(event)
        if outcome is not None:
            return outcome.value
