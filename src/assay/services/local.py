"""The local backend: questions run in worker processes on this machine.

By default each question gets a fresh worker: the parent starts ``python -m
assay.services.worker QUESTION_UUID`` in a new process group (so the child and anything it
starts can be killed together), writes the question to its stdin, and reads its stdout (events)
and stderr (kept as a bounded tail for error messages) continuously on two threads, so a child
printing megabytes can neither fill a pipe and stall nor grow the parent's memory: events pass
through a bounded queue, and a slow consumer slows the child down instead.

With ``ASSAY_WORKER_POOL=N`` (N > 0) a worker (``--serve``) answers many questions in turn, one
JSON line each on its stdin, loading the app once; this process keeps up to N idle workers per
service folder, code hash and configuration (``_Pool``). A worker is reused only after a clean
result; one that crashed, hung, timed out, was cancelled or whose app raised is killed.

The answer loop stops the child (``killpg`` with SIGKILL) and says why when:

- the question's ``timeout`` passes (``QuestionTimeout``);
- nothing, not even a heartbeat, arrives for ``maximum_heartbeat_interval`` seconds
  (``ChildCrashed``: the child hangs, e.g. stopped or stuck in C code holding the GIL);
- the process ends without a result (``ChildCrashed`` with its exit status: ``os._exit``, a
  signal, an interpreter that could not start);
- the question is cancelled (``QuestionCancelled``).
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
from collections.abc import Callable
from typing import Any

from assay.core.errors import (
    AssayError,
    ChildCrashed,
    InvalidMonitorMessage,
    QuestionCancelled,
    QuestionNotFound,
    QuestionTimeout,
)
from assay.services import protocol
from assay.services.config import ServiceConfig
from assay.services.events import EventRecorder, cap_text
from assay.services.exceptions import exception_payload, rebuild_exception
from assay.services.twine import Twine

logger = logging.getLogger(__name__)

_EOF = object()
_QUEUE_SIZE = 10_000
_STDERR_TAIL = 8 * 1024
_POLL = 0.05
_REAP_SECONDS = 5.0
_TEXT_LIMIT = protocol.LOG_TEXT_CAP + 100
_STARTUP_ALLOWANCE = 60.0

MonitorHandler = Callable[[Any], None]

#: Questions running in this process, by uuid (for cancel and asynchronous answers).
_running: dict[str, LocalQuestion] = {}
_running_lock = threading.Lock()


def running_question(question_uuid: str) -> LocalQuestion | None:
    with _running_lock:
        return _running.get(question_uuid)


def _start_worker(arguments: list[str], cwd: str | None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "assay.services.worker", *arguments],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        start_new_session=True,
        close_fds=True,
    )


class _Worker:
    """A worker process and the two threads reading its stdout (events) and stderr (a tail).

    A one-question worker (``reusable=False``) is told its question and exits after answering;
    a pool worker (``reusable=True``, ``--serve``) answers questions one after another.
    """

    def __init__(self, reusable: bool, cwd: str, question_uuid: str = "") -> None:
        self.reusable = reusable
        self.process = _start_worker(["--serve"] if reusable else [question_uuid], cwd)
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

    def send(self, question: dict[str, Any]) -> None:
        """Hand the worker a question (a pool worker's stdin stays open for the next one)."""
        data = json.dumps(question, ensure_ascii=False).encode()
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
            pass  # the worker died; the answer loop reports how

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
        stream = self.process.stdout
        try:
            for line in stream:
                event = protocol.decode(line)
                if event is None:
                    text = line.decode("utf-8", "replace").rstrip()
                    event = {
                        "kind": "log_record",
                        "at": time.time(),
                        "payload": {
                            "name": "stdout",
                            "levelno": logging.INFO,
                            "levelname": "INFO",
                            "message": protocol.cap(text),
                        },
                    }
                self.events.put(event)
        except (OSError, ValueError):
            pass
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
            pass

    def stderr_tail(self) -> str:
        text = b"".join(self._stderr).decode("utf-8", "replace").strip()
        return text[-2000:]

    def kill(self) -> None:
        """SIGKILL the worker's process group (the worker and whatever its app started)."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            try:
                self.process.kill()
            except OSError:
                pass

    def reap(self) -> int | None:
        try:
            return self.process.wait(timeout=_REAP_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.process.wait()

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
                pass


PoolKey = tuple[str, str, str]


def pool_key(service: ServiceConfig) -> PoolKey:
    """What a pool worker is for: the service folder, its code hash (the app folder's ``.py``
    files and the twine) and a hash of its configuration."""
    from assay.core import hashing
    from assay.services import app_loader

    code = app_loader.code_hash(str(service.app_source_path), str(service.twine_path))
    configuration = json.dumps(service.to_primitive(), sort_keys=True, default=str)
    return (str(service.directory), code, hashing.hash_bytes(configuration.encode()))


class _Pool:
    """Idle pool workers of this process, at most ``ASSAY_WORKER_POOL`` per service key.

    A worker goes back to the pool only after a clean result; a worker that crashed, hung,
    timed out, was cancelled or whose app raised is killed. Workers of an older revision of a
    service (another code hash or configuration in the same folder) are stopped when a new
    revision is asked. Every pool worker is killed when this process exits (``atexit``); one
    whose parent dies without that sees its stdin close and kills its own process group.
    """

    def __init__(self) -> None:
        self._idle: dict[PoolKey, list[_Worker]] = {}
        self._busy: set[_Worker] = set()
        self._lock = threading.Lock()
        self._registered = False

    @staticmethod
    def size() -> int:
        try:
            return max(0, int(os.environ.get("ASSAY_WORKER_POOL", "0") or 0))
        except ValueError:
            return 0

    def acquire(self, key: PoolKey) -> _Worker:
        """An idle worker for ``key``, or a new pool worker started for it."""
        stale: list[_Worker] = []
        taken: _Worker | None = None
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
                    stale.extend(self._idle.pop(other))  # an older revision of this service
            if taken is not None:
                self._busy.add(taken)
        for worker in stale:
            worker.close()
        if taken is not None:
            return taken
        worker = _Worker(True, key[0])
        with self._lock:
            self._busy.add(worker)
            if not self._registered:
                self._registered = True
                atexit.register(self.close)
        return worker

    def release(self, worker: _Worker, key: PoolKey) -> None:
        """Keep a worker that answered cleanly for the next question, if there is room."""
        with self._lock:
            self._busy.discard(worker)
            idle = self._idle.setdefault(key, [])
            if len(idle) < self.size() and worker.alive():
                idle.append(worker)
                return
        worker.kill()  # one more than the pool keeps: stopped without delaying the answer
        threading.Thread(target=worker.close, name="assay-reap", daemon=True).start()

    def discard(self, worker: _Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
        worker.close()

    def close(self) -> None:
        """Stop every pool worker of this process, idle or answering."""
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


_pool = _Pool()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_pool.forget)


def close_pool() -> None:
    """Stop this process's pool workers (they are also stopped when it exits)."""
    _pool.close()


def pool_pids() -> list[int]:
    """Process ids of this process's pool workers, idle or answering."""
    return _pool.pids()


class LocalQuestion:
    """One question to a local service: its worker, its event stream and its outcome."""

    def __init__(
        self,
        service: ServiceConfig,
        twine: Twine,
        question: dict[str, Any],
        recorder: EventRecorder,
        handle_monitor_message: MonitorHandler | None = None,
        received_events: list[dict[str, Any]] | None = None,
    ) -> None:
        self.service = service
        self.twine = twine
        self.question = question
        self.question_uuid: str = question["question_uuid"]
        self.recorder = recorder
        self.handle_monitor_message = handle_monitor_message
        self.received_events = received_events
        self.worker: _Worker | None = None
        self._key: PoolKey | None = None
        self._reuse = False
        self._cancelled = threading.Event()

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self.worker.process if self.worker is not None else None

    # -- starting ---------------------------------------------------------------------------
    def start(self) -> None:
        with _running_lock:
            _running[self.question_uuid] = self
        folder = str(self.service.directory)
        try:
            if _pool.size() > 0:
                # A pool worker may have been started for an earlier question: it takes this
                # process's environment and the service's folder from the question.
                self._key = pool_key(self.service)
                self.question = {**self.question, "environment": dict(os.environ), "cwd": folder}
                worker = _pool.acquire(self._key)
            else:
                worker = _Worker(False, folder, self.question_uuid)
        except Exception as error:  # no worker could be started (or the app folder is gone)
            with _running_lock:
                _running.pop(self.question_uuid, None)
            payload = {**exception_payload(error), "origin": "parent"}
            self.recorder.add("exception", payload)
            self.recorder.finish("crashed", error=payload)
            raise
        self.worker = worker
        if self._cancelled.is_set():
            self.kill()
        worker.send(self.question)

    def stderr_tail(self) -> str:
        return self.worker.stderr_tail() if self.worker is not None else ""

    # -- stopping ---------------------------------------------------------------------------
    def kill(self) -> None:
        if self.worker is not None:
            self.worker.kill()

    def cancel(self) -> None:
        """Stop the child now; the answer loop records ``cancelled`` and raises."""
        self._cancelled.set()
        self.kill()

    def _reap(self) -> int | None:
        return self.worker.reap() if self.worker is not None else None

    # -- answering --------------------------------------------------------------------------
    def wait(self, timeout: float | None, maximum_heartbeat_interval: float) -> dict[str, Any]:
        """Handle events until the answer; returns it or raises why there is none."""
        try:
            return self._loop(timeout, maximum_heartbeat_interval)
        finally:
            worker = self.worker
            if worker is None:
                pass
            elif self._reuse and self._key is not None:
                _pool.release(worker, self._key)
            elif worker.reusable:
                _pool.discard(worker)  # it crashed, hung, timed out, was cancelled or raised
            else:
                worker.kill()
                # Its answer is in: reaping the process and its readers need not delay it.
                threading.Thread(target=worker.close, name="assay-reap", daemon=True).start()
            with _running_lock:
                _running.pop(self.question_uuid, None)

    def _loop(self, timeout: float | None, maximum_heartbeat_interval: float) -> dict[str, Any]:
        started = time.monotonic()
        deadline = started + timeout if timeout is not None else None
        last_seen = started
        # Until the worker has started (its imports can take seconds on a busy machine), allow
        # more silence: a worker that dies while starting is still seen at once (end of file).
        allowed = max(maximum_heartbeat_interval, _STARTUP_ALLOWANCE)
        assert self.worker is not None
        events = self.worker.events
        while True:
            now = time.monotonic()
            if self._cancelled.is_set():
                raise self._fail_cancelled()
            if deadline is not None and now >= deadline:
                raise self._fail(
                    "timed_out",
                    QuestionTimeout(
                        f"{self.service.sruid}: no answer to question {self.question_uuid} "
                        f"within the timeout of {timeout:g} s; the child was stopped"
                    ),
                )
            if now - last_seen >= allowed:
                raise self._fail(
                    "crashed",
                    ChildCrashed(
                        f"{self.service.sruid}: question {self.question_uuid}: no heartbeat or "
                        f"other event for {allowed:g} s; the child is hung "
                        "and was stopped"
                    ),
                )
            flush_in = self.recorder.flush_due_in()
            if flush_in is not None and flush_in <= 0:
                self.recorder.flush()
                flush_in = None
            wait_for = min(
                _POLL * 4,
                allowed - (now - last_seen),
                (deadline - now) if deadline is not None else _POLL * 4,
                flush_in if flush_in is not None else _POLL * 4,
            )
            try:
                event = events.get(timeout=max(0.001, wait_for))
            except queue.Empty:
                continue
            if event is _EOF:
                if self._cancelled.is_set():
                    raise self._fail_cancelled()
                code = self._reap()
                if self._cancelled_elsewhere():
                    self.recorder.finish_cancelled_elsewhere()
                    raise QuestionCancelled(
                        f"{self.service.sruid}: question {self.question_uuid} was cancelled"
                    )
                raise self._fail("crashed", ChildCrashed(self._exit_message(code)))
            last_seen = time.monotonic()
            kind = event["kind"]
            payload = event["payload"]
            if self.received_events is not None and len(self.received_events) < 10_000:
                self.received_events.append(event)
            if kind == "delivery":
                allowed = maximum_heartbeat_interval
                self.recorder.add("delivery", payload, event.get("at"))
                self.recorder.set_status("running")
                self.recorder.add_details(
                    worker_pid=payload.get("pid"), worker_answered=payload.get("answered")
                )
            elif kind == "heartbeat":
                self.recorder.add("heartbeat", {}, event.get("at"))
            elif kind == "log_record":
                # The worker capped it already (marker included); this guards against other writers.
                payload["message"] = cap_text(str(payload.get("message", "")), _TEXT_LIMIT)
                self.recorder.add("log_record", payload, event.get("at"))
                protocol.emit_log_record(payload, self.service.sruid, self.question_uuid)
            elif kind == "monitor_message":
                self._monitor_message(payload, event.get("at"))
            elif kind == "result":
                return self._succeed(payload, event.get("at"))
            elif kind == "exception":
                self.recorder.add("exception", payload, event.get("at"))
                status = "failed"
                self.recorder.finish(status, error=payload)
                raise rebuild_exception(payload, self.service.sruid, self.question_uuid)

    def _monitor_message(self, payload: dict[str, Any], at: Any) -> None:
        data = payload.get("data")
        self.recorder.add("monitor_message", {"data": data}, at)
        try:
            self.twine.validate_monitor_message(data)
        except InvalidMonitorMessage as error:
            logger.warning(
                "[%s | %s] monitor message ignored: %s",
                self.service.sruid,
                self.question_uuid,
                error.message,
            )
            return
        if self.handle_monitor_message is not None:
            try:
                self.handle_monitor_message(data)
            except Exception as error:
                self.kill()
                self.recorder.add("exception", {**exception_payload(error), "origin": "parent"})
                self.recorder.finish("failed", error=exception_payload(error))
                raise

    def _succeed(self, payload: dict[str, Any], at: Any) -> dict[str, Any]:
        from assay.core.manifest import Manifest

        self.recorder.add("result", payload, at)
        self.recorder.finish(
            "succeeded",
            output_values=payload.get("output_values"),
            output_manifest=payload.get("output_manifest"),
        )
        worker = payload.get("worker")
        if (
            self.worker is not None
            and self.worker.reusable
            and self._key is not None
            and isinstance(worker, dict)
            and worker.get("reusable") is True
            and worker.get("code_hash") == self._key[1]
        ):
            self._reuse = True  # a clean answer from the code this worker was started for
        manifest = payload.get("output_manifest")
        return {
            "output_values": payload.get("output_values"),
            "output_manifest": Manifest.deserialise(manifest) if manifest else None,
        }

    def _exit_message(self, code: int | None) -> str:
        if code is not None and code < 0:
            try:
                how = f"was killed by signal {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with status {code}"
        tail = self.stderr_tail()
        said = f"; its last output on stderr: {tail}" if tail else ""
        return (
            f"{self.service.sruid}: the child process for question {self.question_uuid} {how} "
            f"before answering (os._exit, a crash, or a kill){said}"
        )

    def _fail(self, status: str, error: AssayError) -> AssayError:
        self.kill()
        payload = {**exception_payload(error), "origin": "parent", "traceback": ""}
        self.recorder.add("exception", payload)
        self.recorder.finish(status, error=payload)
        return error

    def _cancelled_elsewhere(self) -> bool:
        """True when another process recorded ``cancelled`` (and then killed the worker)."""
        from assay.services.events import list_events

        try:
            return bool(list_events(self.question_uuid, ["cancelled"]))
        except QuestionNotFound:
            return False

    def _fail_cancelled(self) -> QuestionCancelled:
        self.kill()
        self.recorder.add("cancelled", {"by": "parent"})
        self.recorder.finish(
            "cancelled",
            error={"type": "assay.core.errors.QuestionCancelled", "message": "cancelled"},
        )
        return QuestionCancelled(
            f"{self.service.sruid}: question {self.question_uuid} was cancelled"
        )
