"""Starting and ending a job's process group (POSIX), with resource limits.

``spawn`` starts ``argv`` as the leader of a new session and process group, so the job and
everything it starts can be signalled together (``kill_group``). The job process:

* gets SIGKILL when the thread that started it dies (``PR_SET_PDEATHSIG``, Linux), so a
  ``kill -9`` of the supervising process does not leave the job running (reconciliation kills
  any grandchildren left in the group, see ``assay.jobs.reconcile``);
* runs under the limits: CPU affinity to ``cpu`` cores and a CPU-time rlimit, an address-space
  rlimit (``ram_gb``), a file-size rlimit (``disk_gb``).

Both are set before the job's own program starts, by util-linux's ``setpriv --pdeathsig``,
``prlimit`` and ``taskset``, each of which sets its part and ``exec``s the next (the same
process throughout). That keeps Python's fast ``vfork`` path: a ``preexec_fn`` forces a full
``fork`` of this (large, threaded) interpreter and costs ~10x more per job. Where those tools
are missing, a ``preexec_fn`` does the same work.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

_PR_SET_PDEATHSIG = 1
_libc: Any = None
if sys.platform.startswith("linux"):
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

#: Environment variable marking every process of a job (used to recognise a job's processes).
JOB_MARKER = "ASSAY_JOB_ID"
GIB = 1024**3


@dataclass(frozen=True)
class Limits:
    """Resource limits for one job's processes (None: no limit)."""

    cpu: int | None = None
    ram_gb: float | None = None
    disk_gb: float | None = None
    max_duration_s: float | None = None

    def cpu_seconds(self) -> int | None:
        # A CPU-time budget of every allowed core for the whole wall-clock limit (+1 s slack):
        # the wall clock ends the job first, the rlimit stops a job that escaped supervision.
        if self.max_duration_s is None:
            return None
        return math.ceil(self.max_duration_s * (self.cpu or os.cpu_count() or 1)) + 1


def _preexec(limits: Limits, parent_pid: int) -> Callable[[], None]:
    cpu_seconds = limits.cpu_seconds()
    ram = int(limits.ram_gb * GIB) if limits.ram_gb else None
    disk = int(limits.disk_gb * GIB) if limits.disk_gb else None
    listed = _cores(limits)
    cores = set(listed) if listed is not None else None
    libc = _libc

    def run() -> None:
        if libc is not None:
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent_pid:  # the parent died before prctl took effect
                os._exit(137)
        if cores is not None:
            os.sched_setaffinity(0, cores)
        if cpu_seconds is not None:
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
        if ram is not None:
            resource.setrlimit(resource.RLIMIT_AS, (ram, ram))
        if disk is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (disk, disk))

    return run


@functools.lru_cache(maxsize=1)
def _tools() -> dict[str, str] | None:
    found = {name: shutil.which(name) for name in ("setpriv", "prlimit", "taskset")}
    if not sys.platform.startswith("linux") or None in found.values():
        return None
    return {name: path for name, path in found.items() if path is not None}


def _cores(limits: Limits) -> list[int] | None:
    if not limits.cpu or not hasattr(os, "sched_getaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    return allowed[: max(1, min(limits.cpu, len(allowed)))]


def wrapped_argv(argv: Sequence[str], limits: Limits) -> list[str] | None:
    """``argv`` behind the util-linux tools that set the death signal and the limits, or None
    when the tools are not all installed."""
    tools = _tools()
    if tools is None:
        return None
    command = [tools["setpriv"], "--pdeathsig", "KILL", "--"]
    rlimits = []
    cpu_seconds = limits.cpu_seconds()
    if cpu_seconds is not None:
        rlimits.append(f"--cpu={cpu_seconds}:{cpu_seconds + 5}")
    if limits.ram_gb:
        rlimits.append(f"--as={int(limits.ram_gb * GIB)}")
    if limits.disk_gb:
        rlimits.append(f"--fsize={int(limits.disk_gb * GIB)}")
    if rlimits:
        command += [tools["prlimit"], *rlimits, "--"]
    cores = _cores(limits)
    if cores is not None:
        command += [tools["taskset"], "--cpu-list", ",".join(map(str, cores))]
    return command + list(argv)


def _check_executable(program: str, cwd: Path, path: str | None) -> None:
    """Raise what ``exec`` would (the wrappers would only report exit 127)."""
    if "/" in program:
        candidate: str | None = str(Path(cwd) / program)
    else:
        candidate = shutil.which(program, path=path)
    if candidate is None or not os.path.exists(candidate):
        raise FileNotFoundError(2, "No such file or directory", program)
    if not os.access(candidate, os.X_OK) or os.path.isdir(candidate):
        raise PermissionError(13, "Permission denied", program)


def spawn(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    limits: Limits = Limits(),
    stdin: int | IO[Any] | None = subprocess.DEVNULL,
    stdout: int | IO[Any] | None = None,
    stderr: int | IO[Any] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session and process group (its pgid is its pid).

    Must be called from a thread that outlives the process (the death signal follows the
    thread that forked). Raises ``OSError`` when ``argv[0]`` cannot be executed.
    """
    command = wrapped_argv(argv, limits)
    if command is not None:
        _check_executable(argv[0], cwd, env.get("PATH"))
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=dict(env),
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
            close_fds=True,
        )
    return subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
        preexec_fn=_preexec(limits, os.getpid()),
        close_fds=True,
    )


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> bool:
    """Signal every process of group ``pgid``; False when the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (and is not a zombie) on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        try:
            state = stat.read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state not in ("Z", "X")
    return True


def process_groups() -> dict[int, list[int]]:
    """Live pids by process group, from one pass over ``/proc`` (Linux; empty elsewhere)."""
    groups: dict[int, list[int]] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return groups
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        if fields[0] not in ("Z", "X"):
            groups.setdefault(int(fields[2]), []).append(int(entry.name))
    return groups


def group_members(pgid: int) -> list[int]:
    """Live pids of process group ``pgid`` (Linux ``/proc``; empty elsewhere)."""
    return process_groups().get(pgid, [])


def carries_marker(pid: int, job_id: str) -> bool:
    """Whether process ``pid`` was started for job ``job_id`` (its environment has the marker),
    so a recorded pgid is only ever killed when it still belongs to that job."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"{JOB_MARKER}={job_id}".encode() in environ.split(b"\0")


def kill_orphans(pgid: int, job_id: str, groups: dict[int, list[int]] | None = None) -> list[int]:
    """Kill what is left of job ``job_id``'s process group; the pids seen in it.

    The group is killed (``killpg``, so members forked meanwhile go too) only when one of its
    members carries the job's marker: a pgid is only reused once its group is empty, so one
    marked member proves the group is still this job's, and an unrelated group that got the
    same number is left alone. ``groups``: a ``process_groups()`` snapshot, to scan ``/proc``
    once for many jobs.
    """
    members = (groups if groups is not None else process_groups()).get(pgid, [])
    if not any(carries_marker(pid, job_id) for pid in members):
        return []
    kill_group(pgid)
    return sorted(members)


def describe_exit(returncode: int) -> str:
    """``exited with code 3`` / ``killed by SIGKILL`` for messages."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exited with code {returncode}"
