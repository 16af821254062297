"""The fork server process: ``python -m assay.jobs.forkserver_main CONTROL_FD ENTRY [MODULE ...]``.

Started by ``assay.jobs.forkserver`` (the asking side, which also describes the protocol). It
imports the worker, the entry point (running its module's ``warm_up()``) and ``MODULE``s, says
it is ready on the control socket, then forks one child per request and reports each child's pid
and, once reaped, its exit status on the request's reply socket. It is single-threaded: only the
forking thread survives a fork. After forking it may call the entry module's ``warm_for(hint)``
(once per hint and file version) so that later children find ready what the hint names.
"""

from __future__ import annotations

import gc
import importlib
import json
import logging
import os
import select
import signal
import socket
import sys
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger(__name__)

_MESSAGE = 1 << 20


def _preload(entry: str, modules: Sequence[str]) -> list[str]:
    """Import the worker, the entry point (and its ``warm_up``) and ``modules``; what failed."""
    failed: list[str] = []
    try:
        from assay.jobs import worker

        worker._warm_up(entry)
    except Exception as error:
        failed.append(f"{entry}: {type(error).__name__}: {error}")
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as error:
            failed.append(f"{name}: {type(error).__name__}: {error}")
    return failed


def _child(request: dict[str, Any], fds: list[int], inherited: list[int]) -> None:
    """In the forked child: become the job's worker. Never returns."""
    code = 70
    try:
        os.setsid()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in inherited:
            os.close(fd)
        for target, fd in enumerate(fds[:3]):
            os.dup2(fd, target)
            os.close(fd)
        os.close(fds[3])
        _take_environment(request["environment"])
        if request.get("cwd"):
            os.chdir(request["cwd"])
        sys.path.insert(0, os.getcwd())  # what ``python -m`` puts first
        _reseed()
        from assay.jobs import worker

        arguments = [str(request["entry"]), str(request["job_id"])]
        sys.argv = [str(worker.__file__), *arguments]
        code = worker.main(arguments)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()  # fd 2 is the job's stderr: the supervisor's tail shows it
    finally:
        os._exit(code)


def _take_environment(environment: dict[str, str]) -> None:
    """Make ``os.environ`` (and the C environment) the asker's, touching only what differs."""
    for name in [name for name in os.environ if name not in environment]:
        del os.environ[name]
    for name, value in environment.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


def _reseed() -> None:
    """A fresh interpreter draws fresh random state; a fork copies the server's. ``random``
    re-seeds itself after a fork; ``numpy.random``'s global state does not."""
    numpy_random = sys.modules.get("numpy.random")
    if numpy_random is not None:
        numpy_random.seed()


def _reap(children: dict[int, socket.socket]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        reply = children.pop(pid, None)
        if reply is not None:
            _say(reply, {"status": os.waitstatus_to_exitcode(status)})  # False: asker gone
            reply.close()


def serve(control: socket.socket, entry: str) -> None:
    """Fork a child per request until the control socket closes and every child has ended."""
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so that SIGCHLD wakes select
    children: dict[int, socket.socket] = {}
    warmed: set[tuple[str, int, int]] = set()
    accepting = True
    while accepting or children:
        watched: list[Any] = [wake_read] + ([control] if accepting else [])
        ready, _, _ = select.select(watched, [], [], 1.0)
        if wake_read in ready:
            while True:
                try:
                    if not os.read(wake_read, 512):
                        break
                except BlockingIOError:
                    break
        _reap(children)
        if control not in ready:
            continue
        try:
            data, fds, _, _ = socket.recv_fds(control, _MESSAGE, 4)
        except OSError:
            data, fds = b"", []
        if not data or len(fds) != 4:  # the asker closed it (or a request lacks its pipes)
            accepting = accepting and bool(data)
            for fd in fds:
                os.close(fd)
            continue
        reply = socket.socket(fileno=fds[3])
        try:
            request = {**json.loads(data), "entry": entry}
            pid = os.fork()
        except (OSError, ValueError) as error:
            for fd in fds[:3]:
                os.close(fd)
            _say(reply, {"error": f"{type(error).__name__}: {error}"})
            reply.close()
            continue
        if pid == 0:
            inherited = [control.fileno(), wake_read, wake_write]
            inherited += [other.fileno() for other in children.values()]
            _child(request, fds, inherited)
        for fd in fds[:3]:
            os.close(fd)
        children[pid] = reply
        if not _say(reply, {"pid": pid}):
            os.kill(pid, signal.SIGKILL)  # its asker gave up waiting: nobody reads its pipes
        _warm_for(entry, request.get("hint"), warmed)
    control.close()


def _warm_for(entry: str, hint: Any, warmed: set[tuple[str, int, int]]) -> None:
    """Call the entry module's ``warm_for(hint)`` once per hint and version of the file it names
    (after the fork: the child that asked does not wait for it)."""
    hook = getattr(sys.modules.get(entry.partition(":")[0]), "warm_for", None)
    if not isinstance(hint, str) or not callable(hook) or len(warmed) >= 256:
        return
    try:
        stat = os.stat(hint)
    except OSError:
        return  # nothing to prepare: the child reports a missing file itself
    version = (hint, stat.st_mtime_ns, stat.st_size)
    if version in warmed:
        return
    warmed.add(version)
    try:
        hook(hint)
    except Exception as error:  # the child meets (and reports) the same problem itself
        logger.debug("warm_for(%r) failed: %s", hint, error)
    gc.freeze()


def _say(reply: socket.socket, message: dict[str, Any]) -> bool:
    """Send one reply; False when the asker's end is closed."""
    try:
        reply.send(json.dumps(message).encode())
    except OSError:
        return False
    return True


def main(argv: list[str]) -> int:
    if len(argv) < 2 or not argv[0].isdigit():
        sys.stderr.write(
            "usage: python -m assay.jobs.forkserver_main CONTROL_FD ENTRY [MODULE ...]\n"
        )
        return 2
    control = socket.socket(fileno=int(argv[0]))
    entry, modules = argv[1], argv[2:]
    if sys.path and sys.path[0] == os.getcwd():
        del sys.path[0]  # the server's folder ("/"); each child puts its own first instead
    failed = _preload(entry, modules)
    gc.collect()
    gc.freeze()  # children share these pages: the collector need not touch (copy) them
    control.send(json.dumps({"ready": os.getpid(), "failed": failed}).encode())
    serve(control, entry)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))  # the process entry point: its exit status
