"""The worker process that answers questions for the local backend.

``python -m assay.services.worker QUESTION_UUID`` answers one question: the parent writes it
(JSON) to stdin and closes it; this process answers with JSON lines on its stdout (see
``assay.services.protocol``) and ends with ``os._exit`` after its last event, so threads the app
left running cannot keep it alive.

``python -m assay.services.worker --serve`` is a pool worker: it reads questions one JSON line at
a time on stdin and answers them in turn, importing the app and compiling the twine once. It
answers only questions to the service it answered first (the parent keeps one pool per service
folder, code hash and configuration). Between questions it is silent: anything the app's
leftover threads log or print then is dropped, never sent with the next question. It exits
after an exception (the parent never reuses a worker whose app raised) and kills its whole
process group when its stdin closes: the parent retired it, or the parent is gone, so a pool
worker never outlives the process that started it.

In both modes, before the app runs, file descriptors 1 and 2 are pointed at pipes read by two
threads, so anything the app (or a C library, or a subprocess it starts) prints arrives as log
records (stdout at INFO, stderr at WARNING) instead of corrupting the event stream. Log records of
every logger go to the parent as ``log_record`` events; a thread sends a ``heartbeat`` every
``heartbeat_interval`` seconds while a question runs.

Imports stay light on purpose: a fresh worker's start-up time is the floor of a question's round
trip.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from typing import Any, NoReturn

from assay.services import protocol

_READ_CHUNK = 64 * 1024
_SYNC = b"\x00assay-sync-"
_SYNC_SECONDS = 1.0
_IDLE_NAME = b"assay-idle"


class Channel:
    """Writes events to the parent, whole lines under a lock.

    A pool worker's channel is active only while a question runs: events sent between
    questions (by threads an app left running) are dropped, so none reaches the wrong question.
    """

    def __init__(self, fd: int, active: bool = True) -> None:
        self._fd = fd
        self._lock = threading.Lock()
        self._active = active
        self.subscribed = True

    def send(self, kind: str, payload: dict[str, Any]) -> None:
        data = protocol.encode(kind, payload, time.time())
        with self._lock:
            if self._active:
                self._write(data)

    def log(self, payload: dict[str, Any]) -> None:
        """A log record, sent when the question subscribed to logs."""
        if self.subscribed and self._active:
            self.send("log_record", payload)

    def begin(self, subscribed: bool) -> None:
        with self._lock:
            self._active = True
            self.subscribed = subscribed

    def end(self, kind: str, payload: dict[str, Any]) -> None:
        """Send the question's last event; nothing more is sent until the next ``begin``."""
        data = protocol.encode(kind, payload, time.time())
        with self._lock:
            self._write(data)
            self._active = False

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._fd, view)
            except BrokenPipeError:
                os._exit(3)  # the parent is gone: nobody is waiting for the answer
            view = view[written:]


class _EventHandler(logging.Handler):
    def __init__(self, channel: Channel) -> None:
        super().__init__()
        self._channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._channel.log(protocol.record_payload(record))
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
            if len(buffer) > protocol.LOG_TEXT_CAP and _SYNC not in buffer:
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
                try:
                    self._seen = max(self._seen, int(number))
                except ValueError:
                    pass
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
                "message": protocol.cap(text),
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
        try:
            stream.flush()
        except Exception:
            pass


def _finish_capture(captures: list[_Capture]) -> None:
    """Flush and close fds 1 and 2 so the capture threads send what is left, then wait a little
    for them (a subprocess the app left running may still hold the pipes open)."""
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


def _runner(question: dict[str, Any], runners: dict[str, Any] | None) -> Any:
    """The question's Runner; a pool worker keeps it (app imported, twine compiled) for the
    next question, handing each question a fresh copy of the configuration values."""
    from assay.services.config import ServiceConfig
    from assay.services.runner import Runner

    if runners is None:
        return Runner.from_config(ServiceConfig.from_primitive(question["service"]))
    import copy

    key = json.dumps(question["service"], sort_keys=True, default=str)
    cached = runners.get(key)
    if cached is None:
        runner = Runner.from_config(ServiceConfig.from_primitive(question["service"]))
        cached = (runner, copy.deepcopy(runner.configuration_values))
        runners.clear()
        runners[key] = cached
    runner, pristine = cached
    runner.configuration_values = copy.deepcopy(pristine)
    runner._code_version = None  # git commit and dirty flag are read again when outputs commit
    return runner


def answer(
    question: dict[str, Any], channel: Channel, runners: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any], str | None]:
    """Run the question's service; returns ``("result" | "exception", payload, code hash)``."""
    from assay.services.exceptions import exception_payload

    try:
        runner = _runner(question, runners)
        analysis = runner.run(
            input_values=question.get("input_values"),
            input_manifest=question.get("input_manifest"),
            children=question.get("children"),
            handle_monitor_message=lambda data: channel.send("monitor_message", {"data": data}),
            question_uuid=question["question_uuid"],
            parent_question_uuid=question.get("parent_question_uuid"),
            originator_question_uuid=question.get("originator_question_uuid"),
        )
        output_manifest = analysis.output_manifest
        payload = {
            "output_values": analysis.output_values,
            "output_manifest": output_manifest.serialise() if output_manifest else None,
        }
        try:
            json.dumps(payload)
        except (TypeError, ValueError) as error:
            from assay.core.errors import InvalidStrand

            raise InvalidStrand(
                f"output_values: not JSON ({error}); outputs must be JSON values",
                details={"strand": "output_values", "path": "output_values", "rule": "json"},
            ) from None
        return "result", payload, runner.code_hash
    except BaseException as error:  # everything the app does wrong is reported
        return "exception", exception_payload(error), None


def _warm_up() -> None:
    """Import what a question needs before it arrives (a pool worker)."""
    import assay.services.runner  # noqa: F401
    from assay.services import twine

    twine._lib()


def _unreadable(channel: Channel, error: Exception) -> None:
    channel.begin(False)
    channel.end(
        "exception",
        {
            "type": "assay.core.errors.InvalidInput",
            "message": f"cannot take the question: {type(error).__name__}: {error}",
            "traceback": "",
        },
    )


def _enter(question: dict[str, Any]) -> None:
    """Take the asker's environment and the service's folder, as a fresh process would."""
    if isinstance(question.get("environment"), dict):
        os.environ.clear()
        os.environ.update(question["environment"])
    if question.get("cwd"):
        os.chdir(question["cwd"])
    os.environ["ASSAY_QUESTION_UUID"] = str(question.get("question_uuid", ""))
    logging.getLogger().setLevel(int(question.get("log_level") or logging.INFO))


def _start_heartbeat(channel: Channel, question: dict[str, Any]) -> threading.Event:
    stop = threading.Event()
    threading.Thread(
        target=_heartbeat,
        args=(channel, float(question.get("heartbeat_interval") or 1.0), stop),
        name="assay-heartbeat",
        daemon=True,
    ).start()
    return stop


def main(argv: list[str] | None = None) -> int:
    if argv and argv[0] == "--serve":
        return serve()
    protocol_fd = os.dup(1)
    channel = Channel(protocol_fd)
    try:
        question = json.loads(sys.stdin.buffer.read())
        sys.stdin.close()
    except (ValueError, OSError) as error:
        _unreadable(channel, error)
        os._exit(2)
    _enter(question)
    channel.begin(bool(question.get("subscribe_to_logs", True)))
    channel.send("delivery", {"pid": os.getpid(), "answered": 0})
    stop = _start_heartbeat(channel, question)
    _setup_logging(channel)
    captures = _redirect(channel)
    kind, payload, _ = answer(question, channel)
    _finish_capture(captures)
    stop.set()
    if kind == "result":
        payload["worker"] = {"pid": os.getpid(), "answered": 1, "reusable": False}
    channel.end(kind, payload)
    os._exit(0)


# -- pool workers -------------------------------------------------------------------------------
def _set_name(name: bytes) -> None:
    """Name this process (``/proc/PID/comm``), so a cancel from another process can tell which
    question a pool worker is answering. Linux only; elsewhere a no-op."""
    try:
        with open("/proc/self/comm", "wb") as handle:
            handle.write(name[:15])
    except OSError:
        pass


def _exit_group() -> NoReturn:
    """Stop this worker and everything it started (its process group, when it leads one: the
    parent starts it in a new session)."""
    import signal

    try:
        if os.getpgrp() == os.getpid():
            os.killpg(os.getpid(), signal.SIGKILL)
    finally:
        os._exit(0)


def _read_questions(control: int, questions: list[bytes], ready: threading.Condition) -> None:
    """Questions from the parent, a JSON line each; end of file means the parent retired this
    worker or is gone: then this worker and its process group stop at once."""
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
                questions.append(bytes(line))
                ready.notify()
            line.clear()


def serve() -> int:
    # The parent's pipe moves off fd 0 (an app reading stdin, or a subprocess it starts, reads
    # /dev/null rather than the next question) and off fd 1 (what the app prints is captured).
    control = os.dup(0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    channel = Channel(os.dup(1), active=False)
    questions: list[bytes] = []
    ready = threading.Condition()
    threading.Thread(
        target=_read_questions,
        args=(control, questions, ready),
        name="assay-questions",
        daemon=True,
    ).start()
    _warm_up()  # before the capture: an import that fails is seen in the stderr tail
    _setup_logging(channel)
    captures = _redirect(channel)
    _set_name(_IDLE_NAME)
    runners: dict[str, Any] = {}
    answered = 0
    while True:
        with ready:
            ready.wait_for(lambda: bool(questions))
            line = questions.pop(0)
        try:
            question = json.loads(line)
            _set_name(protocol.question_name(str(question.get("question_uuid", ""))))
            _enter(question)
        except Exception as error:  # unreadable, or its folder is gone: say so, then stop
            _unreadable(channel, error)
            _exit_group()
        channel.begin(bool(question.get("subscribe_to_logs", True)))
        channel.send("delivery", {"pid": os.getpid(), "answered": answered})
        stop = _start_heartbeat(channel, question)
        kind, payload, code_hash = answer(question, channel, runners)
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
                "code_hash": code_hash,
            }
        _set_name(_IDLE_NAME)
        channel.end(kind, payload)
        if not reusable:
            _exit_group()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))  # the process entry point: its exit status
