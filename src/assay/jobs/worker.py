"""The generic job worker: ``python -m assay.jobs.worker <module:function> [JOB_ID | --serve]``.

It runs tasks for a supervisor (``assay.jobs.supervisor``) and speaks the JSON-lines wire format
of ``assay.jobs.wire``. The entry point names a handler, imported when the first task arrives:

    handler(task: dict, channel: Channel, cache: dict | None) -> (kind, payload, reuse_token)

``kind`` is ``"result"`` or ``"exception"`` (payload from ``assay.jobs.payloads``); the handler
must catch everything its task raises. ``cache`` is a dict the handler may keep things in between
tasks of a pool worker (None in a one-task worker); ``reuse_token`` (e.g. a code hash) tells the
supervisor what the worker is warm for. In a pool worker, the handler's module may define
``warm_up()``, called once before the first task.

``JOB_ID`` mode answers one task: the supervisor writes it (JSON) to stdin and closes it; this
process answers with JSON lines on its stdout and ends with ``os._exit`` after its last event,
so threads the task left running cannot keep it alive. The job id is on the command line only
so that ``ps`` shows which job a process is for: stop requests reach a worker through its
supervisor (the ``stop_requested`` column), never by matching command lines.

``--serve`` is a pool worker: it reads tasks one JSON line at a time on stdin and answers them
in turn. Between tasks it is silent: anything left-over threads log or print then is dropped,
never sent with the next task. It exits after an exception (the supervisor never reuses a
worker whose task raised) and kills its whole process group when its stdin closes: the
supervisor retired it, or the supervisor is gone, so a pool worker never outlives the process
that started it.

In both modes, before the task runs, file descriptors 1 and 2 are pointed at pipes read by two
threads, so anything the task (or a C library, or a subprocess it starts) prints arrives as log
records (stdout at INFO, stderr at WARNING) instead of corrupting the event stream. Log records
of every logger go to the supervisor as ``log_record`` events; a thread sends a ``heartbeat``
every ``heartbeat_interval`` seconds (a task field) while a task runs.

A task may carry ``environment`` (replaces ``os.environ``, for a pool worker started earlier),
``env`` (variables to add), ``cwd``, ``log_level``, ``heartbeat_interval`` and
``subscribe_to_logs``. Imports stay light on purpose: a fresh worker's start-up time is the
floor of a job's round trip.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, NoReturn

from assay.jobs import wire

_READ_CHUNK = 64 * 1024
_SYNC = b"\x00assay-sync-"
_SYNC_SECONDS = 1.0


class Channel:
    """Writes events to the supervisor, whole lines under a lock.

    A pool worker's channel is active only while a task runs: events sent between
    tasks (by threads a task left running) are dropped, so none reaches the wrong task.
    """

    def __init__(self, fd: int, active: bool = True) -> None:
        self._fd = fd
        self._lock = threading.Lock()
        self._active = active
        self.subscribed = True

    def send(self, kind: str, payload: dict[str, Any]) -> None:
        data = wire.encode(kind, payload, time.time())
        with self._lock:
            if self._active:
                self._write(data)

    def log(self, payload: dict[str, Any]) -> None:
        """A log record, sent when the task subscribed to logs."""
        if self.subscribed and self._active:
            self.send("log_record", payload)

    def begin(self, subscribed: bool) -> None:
        with self._lock:
            self._active = True
            self.subscribed = subscribed

    def end(self, kind: str, payload: dict[str, Any]) -> None:
        """Send the task's last event; nothing more is sent until the next ``begin``."""
        data = wire.encode(kind, payload, time.time())
        with self._lock:
            self._write(data)
            self._active = False

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._fd, view)
            except BrokenPipeError:
                os._exit(3)  # the supervisor is gone: nobody is waiting for the answer
            view = view[written:]


class _EventHandler(logging.Handler):
    def __init__(self, channel: Channel) -> None:
        super().__init__()
        self._channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._channel.log(wire.record_payload(record))
        except Exception:
            self.handleError(record)


class _Capture:
    """What is written to fd 1 or 2 becomes log records, line by line (long lines split).

    ``sync()`` returns once everything written to the fd before the call has been sent: it writes
    a numbered marker and waits for the reading thread to reach it (a pipe keeps order).
    """

    def __init__(self, fd: int, name: str, level: int, channel: Channel) -> None:
        self.fd = fd
        self.name = name
        self.level = level
        self.channel = channel
        self._seen = 0
        self._sent = 0
        self._condition = threading.Condition()
        read_end, write_end = os.pipe()
        os.dup2(write_end, fd)
        os.close(write_end)
        self.thread = threading.Thread(
            target=self._read, args=(read_end,), name=f"assay-{name}", daemon=True
        )
        self.thread.start()

    def _read(self, read_end: int) -> None:
        buffer = b""
        while True:
            try:
                chunk = os.read(read_end, _READ_CHUNK)
            except OSError:
                break
            if not chunk:
                break
            buffer += chunk
            lines = buffer.split(b"\n")
            buffer = lines.pop()
            if len(buffer) > wire.LOG_TEXT_CAP and _SYNC not in buffer:
                lines.append(buffer)
                buffer = b""
            for line in lines:
                self._line(line)
        if buffer:
            self._line(buffer)
        os.close(read_end)
        with self._condition:
            self._seen = -1
            self._condition.notify_all()

    def _line(self, line: bytes) -> None:
        at = line.find(_SYNC)
        if at >= 0:
            before, number = line[:at], line[at + len(_SYNC) :].rstrip(b"\x00")
            if before:
                self._send(before)
            with self._condition:
                if number.isdigit():  # a marker the app's own output mangled is not a sync
                    self._seen = max(self._seen, int(number))
                self._condition.notify_all()
            return
        self._send(line)

    def _send(self, line: bytes) -> None:
        text = line.decode("utf-8", "replace").rstrip("\r")
        self.channel.log(
            {
                "name": self.name,
                "levelno": self.level,
                "levelname": logging.getLevelName(self.level),
                "message": wire.cap(text),
                "created": time.time(),
            }
        )

    def sync(self, timeout: float = _SYNC_SECONDS) -> bool:
        """Wait until what was written before now has been sent; False if it could not be."""
        self._sent += 1
        number = self._sent
        try:
            os.write(self.fd, _SYNC + str(number).encode() + b"\x00\n")
        except OSError:
            return False
        with self._condition:
            return (
                self._condition.wait_for(lambda: self._seen >= number or self._seen < 0, timeout)
                and self._seen >= number
            )


def _redirect(channel: Channel) -> list[_Capture]:
    """Point fds 1 and 2 at pipes whose lines become log records."""
    captures = [
        _Capture(1, "stdout", logging.INFO, channel),
        _Capture(2, "stderr", logging.WARNING, channel),
    ]
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    return captures


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        # A stream the app closed or replaced may refuse: what it held is lost either way,
        # and the worker must still report the question's outcome.
        with contextlib.suppress(Exception):
            stream.flush()


def _finish_capture(captures: list[_Capture]) -> None:
    """Flush and close fds 1 and 2 so the capture threads send what is left, then wait a little
    for them (a subprocess the task left running may still hold the pipes open)."""
    _flush_std_streams()
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.close(null)
    deadline = time.monotonic() + 1.0
    for capture in captures:
        capture.thread.join(max(0.0, deadline - time.monotonic()))


def _heartbeat(channel: Channel, interval: float, stop: threading.Event) -> None:
    while not stop.wait(interval):
        channel.send("heartbeat", {})


def _setup_logging(channel: Channel) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_EventHandler(channel))


Handler = Callable[..., tuple[str, dict[str, Any], str | None]]


def load_handler(entry: str) -> Handler:
    """The handler named ``module:function`` (a dotted path)."""
    module_name, _, name = entry.partition(":")
    if not module_name or not name:
        raise ValueError(f"entry point {entry!r}: expected module:function")
    handler = getattr(importlib.import_module(module_name), name)
    if not callable(handler):
        raise ValueError(f"entry point {entry!r} is not callable")
    return handler


def _warm_up(entry: str) -> Handler:
    """Import the handler (and run its module's ``warm_up``) before a task arrives."""
    handler = load_handler(entry)
    warm_up = getattr(sys.modules[handler.__module__], "warm_up", None)
    if callable(warm_up):
        warm_up()
    return handler


def _run(
    handler: Handler | None,
    entry: str,
    task: dict[str, Any],
    channel: Channel,
    cache: dict[str, Any] | None,
) -> tuple[str, dict[str, Any], str | None]:
    try:
        if handler is None:
            handler = load_handler(entry)
        return handler(task, channel, cache)
    except BaseException as error:  # the handler must catch; a broken entry point is reported
        from assay.jobs.payloads import exception_payload

        return "exception", exception_payload(error), None


def _unreadable(channel: Channel, error: Exception) -> None:
    channel.begin(False)
    channel.end(
        "exception",
        {
            "type": "assay.core.errors.InvalidInput",
            "message": f"cannot take the task: {type(error).__name__}: {error}",
            "traceback": "",
        },
    )


def _enter(task: dict[str, Any]) -> None:
    """Take the supervisor's environment and the task's folder, as a fresh process would."""
    if isinstance(task.get("environment"), dict):
        os.environ.clear()
        os.environ.update(task["environment"])
    if isinstance(task.get("env"), dict):
        os.environ.update({str(k): str(v) for k, v in task["env"].items()})
    if task.get("cwd"):
        os.chdir(task["cwd"])
    logging.getLogger().setLevel(int(task.get("log_level") or logging.INFO))


def _start_heartbeat(channel: Channel, task: dict[str, Any]) -> threading.Event:
    stop = threading.Event()
    threading.Thread(
        target=_heartbeat,
        args=(channel, float(task.get("heartbeat_interval") or 1.0), stop),
        name="assay-heartbeat",
        daemon=True,
    ).start()
    return stop


def main(argv: list[str] | None = None) -> int:
    arguments = list(argv or [])
    if not arguments or arguments[0].startswith("-"):
        sys.stderr.write("usage: python -m assay.jobs.worker MODULE:FUNCTION [JOB_ID | --serve]\n")
        return 2
    entry = arguments[0]
    if arguments[1:2] == ["--serve"]:
        return serve(entry)
    protocol_fd = os.dup(1)
    channel = Channel(protocol_fd)
    try:
        task = json.loads(sys.stdin.buffer.read())
        sys.stdin.close()
    except (ValueError, OSError) as error:
        _unreadable(channel, error)
        os._exit(2)
    _enter(task)
    channel.begin(bool(task.get("subscribe_to_logs", True)))
    channel.send("delivery", {"pid": os.getpid(), "answered": 0})
    stop = _start_heartbeat(channel, task)
    _setup_logging(channel)
    captures = _redirect(channel)
    kind, payload, _ = _run(None, entry, task, channel, None)
    _finish_capture(captures)
    stop.set()
    if kind == "result":
        payload["worker"] = {"pid": os.getpid(), "answered": 1, "reusable": False}
    channel.end(kind, payload)
    os._exit(0)


# -- pool workers -------------------------------------------------------------------------------
def _exit_group() -> NoReturn:
    """Stop this worker and everything it started (its process group, when it leads one: the
    supervisor starts it in a new session)."""
    import signal

    try:
        if os.getpgrp() == os.getpid():
            os.killpg(os.getpid(), signal.SIGKILL)
    finally:
        os._exit(0)


def _read_tasks(control: int, tasks: list[bytes], ready: threading.Condition) -> None:
    """Tasks from the supervisor, a JSON line each; end of file means the supervisor retired
    this worker or is gone: then this worker and its process group stop at once."""
    line = bytearray()
    while True:
        try:
            chunk = os.read(control, _READ_CHUNK)
        except OSError:
            chunk = b""
        if not chunk:
            _exit_group()
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                line += chunk[start:]
                break
            line += chunk[start:end]
            start = end + 1
            with ready:
                tasks.append(bytes(line))
                ready.notify()
            line.clear()


def serve(entry: str) -> int:
    # The supervisor's pipe moves off fd 0 (a task reading stdin, or a subprocess it starts,
    # reads /dev/null rather than the next task) and off fd 1 (what the task prints is captured).
    control = os.dup(0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    channel = Channel(os.dup(1), active=False)
    tasks: list[bytes] = []
    ready = threading.Condition()
    threading.Thread(
        target=_read_tasks,
        args=(control, tasks, ready),
        name="assay-tasks",
        daemon=True,
    ).start()
    handler = _warm_up(entry)  # before the capture: an import that fails is seen in the stderr tail
    _setup_logging(channel)
    captures = _redirect(channel)
    cache: dict[str, Any] = {}
    answered = 0
    while True:
        with ready:
            ready.wait_for(lambda: bool(tasks))
            line = tasks.pop(0)
        try:
            task = json.loads(line)
            _enter(task)
        except Exception as error:  # unreadable, or its folder is gone: say so, then stop
            _unreadable(channel, error)
            _exit_group()
        channel.begin(bool(task.get("subscribe_to_logs", True)))
        channel.send("delivery", {"pid": os.getpid(), "answered": answered})
        stop = _start_heartbeat(channel, task)
        kind, payload, token = _run(handler, entry, task, channel, cache)
        _flush_std_streams()
        synced = all([capture.sync() for capture in captures])
        stop.set()
        answered += 1
        reusable = kind == "result" and synced
        if kind == "result":
            payload["worker"] = {
                "pid": os.getpid(),
                "answered": answered,
                "reusable": reusable,
                "token": token,
            }
        channel.end(kind, payload)
        if not reusable:
            _exit_group()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))  # the process entry point: its exit status
