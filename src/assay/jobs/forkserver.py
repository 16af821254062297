"""A fork server: one-task workers forked from a pre-imported process instead of started afresh.

A fresh worker (``python -m assay.jobs.worker ENTRY JOB_ID``) spends most of a short job's round
trip starting Python and importing. A fork server is a long-lived process (``python -m
assay.jobs.forkserver_main CONTROL_FD ENTRY [MODULE ...]``, see there), started by the first job
that needs it, that imports the worker, the entry point's module (running its ``warm_up()``) and
any extra modules once, then forks **one child per job**. A child is never reused: each is a
fresh fork of the same pristine server, so nothing one job does (module-level state, threads,
patched libraries, ``sys.path``) reaches another.

The server is single-threaded (it must be: only the forking thread survives a fork) and is
started by ``subprocess`` from the asking process, never forked from it, so a threaded asker is
never forked. It talks to its asker over a ``SOCK_SEQPACKET`` socket pair (Linux):

- a request carries, by ``SCM_RIGHTS``, the child's stdin, stdout and stderr (the same pipes a
  spawned worker gets) and one end of a private *reply* socket pair, plus JSON: the job id, the
  working directory and the asker's environment at the time of asking;
- the server forks; the child starts a new session (its pgid is its pid, so a stop kills its
  whole group as for a spawned worker), takes those pipes as fds 0-2, closes every fd of the
  server, takes the environment and folder, puts the folder first on ``sys.path`` (as ``-m``
  does), re-seeds ``random`` (and ``numpy.random`` when loaded), and runs the worker's
  one-task ``main``, which ends with ``os._exit``;
- on the reply socket the server sends ``{"pid"}`` after the fork and ``{"status"}`` (the exit
  code, negative for a signal, as ``Popen.returncode``) once it has reaped the child.

``ForkedChild`` is that child seen from the asker, with the part of ``Popen``'s interface the
supervisor uses. When the server dies, its running children go on (their pipes are the asker's)
but their exit status is lost (``status_lost``); the next request finds the server gone (or gets
no pid) and starts a new server once, else returns None so the caller spawns a fresh
interpreter: no job is lost. When the asker's end of the control socket closes (the asker exited
or closed the server), the server takes no more requests and exits once its children are
reaped. Servers are keyed by entry point, extra modules and the asker's variables that shape an
interpreter's start (``PYTHON*``, the locale, ``HOME``); at most ``MAX_SERVERS`` are kept (the
least recently used is closed first).

``ASSAY_FORK_SERVER=0`` turns it off (every job spawns a fresh interpreter); it is also off where
``fork`` or ``SCM_RIGHTS`` over ``SOCK_SEQPACKET`` are missing (not Linux).
"""

from __future__ import annotations

import atexit
import collections
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import IO

logger = logging.getLogger(__name__)

ENV_SWITCH = "ASSAY_FORK_SERVER"
MAX_SERVERS = 4
#: How long a job waits at most for a starting server's imports (then it spawns instead).
READY_SECONDS = 30.0
#: How long a request to a ready server waits for its child's pid.
REPLY_SECONDS = 10.0
_MESSAGE = 1 << 20
_OFF = frozenset({"0", "off", "false", "no"})


def supported() -> bool:
    """Whether this platform can run a fork server (Linux: fork, SEQPACKET, SCM_RIGHTS)."""
    return (
        sys.platform.startswith("linux")
        and hasattr(os, "fork")
        and hasattr(socket, "send_fds")
        and hasattr(socket, "SOCK_SEQPACKET")
    )


def enabled() -> bool:
    """Supported here and not turned off by ``ASSAY_FORK_SERVER=0``."""
    return supported() and os.environ.get(ENV_SWITCH, "1").strip().lower() not in _OFF


# -- the asking side ----------------------------------------------------------------------------
class ForkedChild:
    """A worker forked by a fork server: ``pid``, ``stdin``/``stdout``/``stderr`` (pipes of this
    process) and ``poll``/``wait``/``kill`` with ``Popen``'s meaning. Its exit status comes from
    the server; ``status_lost`` is True when the server died first (the status is then unknown
    and ``returncode`` is set only so that ``poll`` says the child has ended)."""

    def __init__(self, pid: int, reply: socket.socket, stdin: int, stdout: int, stderr: int):
        self.pid = pid
        self.returncode: int | None = None
        self.status_lost = False
        self.stdin: IO[bytes] | None = open(stdin, "wb")  # noqa: SIM115 (closed by its owner)
        self.stdout: IO[bytes] | None = open(stdout, "rb")  # noqa: SIM115
        self.stderr: IO[bytes] | None = open(stderr, "rb")  # noqa: SIM115
        self._reply: socket.socket | None = reply
        self._lock = threading.Lock()

    def _read_status(self, timeout: float | None) -> None:
        """Take the status from the reply socket if it comes within ``timeout`` (None: block);
        without a server to say, see whether the pid is gone."""
        reply = self._reply
        if reply is None:
            if self.status_lost and not _alive(self.pid):
                self.returncode = 255  # ended, how is unknown: see ``status_lost``
            return
        ready, _, _ = select.select([reply], [], [], timeout)
        if not ready:
            return
        try:
            data = reply.recv(_MESSAGE)
        except OSError:
            data = b""
        if data:
            self.returncode = int(json.loads(data)["status"])
        else:  # the server died before it could say how the child ended
            self.status_lost = True
        self.release()
        if self.returncode is None:
            self._read_status(0)

    def poll(self) -> int | None:
        if self.returncode is None and self._lock.acquire(blocking=False):
            try:
                self._read_status(0)
            finally:
                self._lock.release()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                if self.returncode is not None:
                    return self.returncode
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                lost = self._reply is None
                self._read_status(0 if lost else left)
                if self.returncode is not None:
                    return self.returncode
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"forked worker {self.pid}", timeout or 0.0)
            if lost:
                time.sleep(0.02)  # no server to wake us: look at the pid again soon

    def kill(self) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                return  # ended meanwhile

    def release(self) -> None:
        """Close the reply socket (the status is in, or will never come)."""
        reply, self._reply = self._reply, None
        if reply is not None:
            reply.close()
        if self.returncode is None:
            self.status_lost = True  # from now on, the pid alone says whether it has ended


def _alive(pid: int) -> bool:
    from assay.jobs.process import pid_alive

    return pid_alive(pid)


class ForkServer:
    """One fork server process and this process's end of its control socket."""

    def __init__(self, entry: str, preload: Sequence[str]) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "assay.jobs.forkserver_main",
                    str(theirs.fileno()),
                    entry,
                    *preload,
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd="/",
                pass_fds=[theirs.fileno()],
                start_new_session=True,
                close_fds=True,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.pid = self.process.pid
        self.control = ours
        self.preload = tuple(preload)
        self.ready = False
        self._lock = threading.Lock()
        self._ready_lock = threading.Lock()

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout: float) -> bool:
        """Whether the server has done its imports, waiting up to ``timeout`` seconds for it;
        ``OSError`` when it died while starting."""
        if self.ready:
            return True
        deadline = time.monotonic() + max(0.0, timeout)
        if not self._ready_lock.acquire(timeout=max(0.0, timeout)):
            return False
        try:
            if self.ready:
                return True
            ready, _, _ = select.select(
                [self.control], [], [], max(0.0, deadline - time.monotonic())
            )
            if not ready:
                return False
            data = self.control.recv(_MESSAGE)
            if not data:
                raise OSError(f"fork server {self.pid} ended while starting")
            failed = json.loads(data).get("failed") or []
            if failed:
                logger.warning(
                    "fork server %d could not preload %s; each child imports what it needs",
                    self.pid,
                    "; ".join(failed),
                )
            self.ready = True
            return True
        finally:
            self._ready_lock.release()

    def fork(
        self,
        job_id: str,
        cwd: str | None,
        environment: dict[str, str],
        hint: str | None = None,
    ) -> ForkedChild:
        """A new child for one job; ``OSError`` when the server cannot make one (it died, or
        the fork failed): the caller then starts another server or spawns a fresh worker."""
        stdin_read, stdin_write = os.pipe()
        stdout_read, stdout_write = os.pipe()
        stderr_read, stderr_write = os.pipe()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        request = json.dumps(
            {"job_id": job_id, "cwd": cwd, "environment": environment, "hint": hint}
        ).encode()
        ours = [stdin_write, stdout_read, stderr_read]
        try:
            try:
                with self._lock:
                    socket.send_fds(
                        self.control,
                        [request],
                        [stdin_read, stdout_write, stderr_write, theirs.fileno()],
                    )
            finally:
                for fd in (stdin_read, stdout_write, stderr_write):
                    os.close(fd)
                theirs.close()
            ready, _, _ = select.select([mine], [], [], REPLY_SECONDS)  # a ready server: ms
            data = mine.recv(_MESSAGE) if ready else b""
            reply = json.loads(data) if data else {"error": "the fork server did not answer"}
            if "pid" not in reply:
                raise OSError(f"fork server {self.pid}: {reply.get('error')}")
        except BaseException:
            mine.close()
            for fd in ours:
                os.close(fd)
            raise
        return ForkedChild(int(reply["pid"]), mine, stdin_write, stdout_read, stderr_read)

    def close(self) -> None:
        """Close the control socket: the server takes no more requests and exits once its
        running children have ended (they are not killed)."""
        self.control.close()
        if self.process.poll() is None:
            try:  # reaped when it exits, without keeping this process waiting for it
                threading.Thread(target=self.process.wait, name="assay-reap", daemon=True).start()
            except RuntimeError:
                return  # this interpreter is shutting down: the server outlives it, then init reaps


ServerKey = tuple[str, tuple[str, ...], tuple[tuple[str, str], ...]]
_servers: collections.OrderedDict[ServerKey, ForkServer] = collections.OrderedDict()
_servers_lock = threading.Lock()
_registered = False


def _key(entry: str, preload: Sequence[str]) -> ServerKey:
    # A server's interpreter was set up by the asker's variables when it started: PYTHON*
    # (PYTHONPATH, PYTHONHASHSEED, ...), the locale (stdio encodings), HOME (user site): a
    # change to them needs a new server. Other variables reach each child with its request.
    python = tuple(sorted((k, v) for k, v in os.environ.items() if _shapes_interpreter(k)))
    return (entry, tuple(preload), python)


def _shapes_interpreter(name: str) -> bool:
    return name.startswith(("PYTHON", "LC_")) or name in ("LANG", "HOME", "VIRTUAL_ENV")


def _server(key: ServerKey, replace: ForkServer | None = None) -> ForkServer:
    global _registered
    stale: list[ForkServer] = []
    with _servers_lock:
        server = _servers.get(key)
        if server is not None and (server is replace or not server.alive()):
            stale.append(_servers.pop(key))
            server = None
        if server is None:
            server = ForkServer(key[0], key[1])
            _servers[key] = server
            while len(_servers) > MAX_SERVERS:
                stale.append(_servers.popitem(last=False)[1])
            if not _registered:
                _registered = True
                atexit.register(close_servers)
        _servers.move_to_end(key)
    for old in stale:
        old.close()
    return server


def fork_worker(
    entry: str,
    cwd: str | None,
    job_id: str,
    preload: Sequence[str] = (),
    wait: float | None = None,
    hint: str | None = None,
) -> ForkedChild | None:
    """A one-task worker for ``entry`` forked by this process's fork server (started now if
    needed, restarted once if it died). None when the fork server is off, failed twice, or is
    still importing after ``wait`` seconds (at most ``READY_SECONDS``; a job's timeout): the
    caller then spawns a fresh interpreter. ``hint``: a string for the entry module's
    ``warm_for(hint)``, which the server calls (once per hint and file version) after forking,
    to prepare what later children of the same kind of job will need."""
    if not enabled():
        return None
    key = _key(entry, preload)
    environment = dict(os.environ)
    until = time.monotonic() + min(READY_SECONDS, READY_SECONDS if wait is None else wait)
    server: ForkServer | None = None
    for attempt in range(2):
        try:
            server = _server(key, replace=server)
            if not server.wait_ready(until - time.monotonic()):
                return None  # still importing: this job spawns, the next one forks
            return server.fork(job_id, cwd, environment, hint)
        except OSError as error:
            logger.warning(
                "fork server for %s: %s (%s)",
                entry,
                error,
                "starting a new one" if attempt == 0 else "starting a fresh interpreter instead",
            )
    return None


def server_pids() -> list[int]:
    """Process ids of this process's fork servers."""
    with _servers_lock:
        return [server.pid for server in _servers.values()]


def close_servers() -> None:
    """Close this process's fork servers (each exits once its running children have ended)."""
    with _servers_lock:
        servers = list(_servers.values())
        _servers.clear()
    for server in servers:
        server.close()


def _forget() -> None:
    """In a forked child of the asker: the servers belong to the parent."""
    global _servers_lock
    _servers.clear()
    _servers_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget)
