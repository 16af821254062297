"""Starting and ending a job's process group (POSIX), with resource limits.

``spawn`` starts ``argv`` as the leader of a new session and process group, so the job and
everything it starts can be signalled together (``kill_group``). Before ``exec`` the child:

* asks the kernel to SIGKILL it when its parent thread dies (``PR_SET_PDEATHSIG``, Linux), so a
  ``kill -9`` of the supervising process does not leave the job running (reconciliation kills
  any grandchildren left in the group, see ``assay.jobs.reconcile``);
* sets the limits: CPU affinity to ``cpu`` cores and a CPU-time rlimit, an address-space rlimit
  (``ram_gb``), a file-size rlimit (``disk_gb``).

The ``preexec_fn`` does only async-signal-safe-ish work (syscalls through pre-loaded ctypes and
the ``os``/``resource`` modules, nothing that imports or takes Python-level locks).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import resource
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
    cores: set[int] | None = None
    if limits.cpu and hasattr(os, "sched_getaffinity"):
        allowed = sorted(os.sched_getaffinity(0))
        cores = set(allowed[: max(1, min(limits.cpu, len(allowed)))])
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


def group_members(pgid: int) -> list[int]:
    """Live pids of process group ``pgid`` (Linux ``/proc``; empty elsewhere)."""
    members: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return members
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def carries_marker(pid: int, job_id: str) -> bool:
    """Whether process ``pid`` was started for job ``job_id`` (its environment has the marker),
    so a recorded pgid is only ever killed when it still belongs to that job."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"{JOB_MARKER}={job_id}".encode() in environ.split(b"\0")


def kill_orphans(pgid: int, job_id: str) -> list[int]:
    """Kill what is left of job ``job_id``'s process group, after checking each member carries
    the job's marker (a reused pgid of an unrelated process is left alone). The pids killed."""
    killed = []
    for pid in group_members(pgid):
        if carries_marker(pid, job_id):
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                continue
    return killed


def describe_exit(returncode: int) -> str:
    """``exited with code 3`` / ``killed by SIGKILL`` for messages."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exited with code {returncode}"
