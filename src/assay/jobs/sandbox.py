"""The bubblewrap (``bwrap``) sandbox for jobs of environments with ``isolation: sandbox``.

Inside the sandbox the job sees: the system directories read-only (``/usr``, ``/etc`` and the
``/bin``, ``/lib*``, ``/sbin`` links or folders), the Python it runs on and Assay's own code
read-only, extra read-only paths the environment lists (``ro_paths``), the files named on its
command line read-only, its own working directory read-write at the same path, and its inputs
read-only over ``inputs/<key>``. Nothing else: not ``ASSAY_HOME`` (store, catalog), not other
jobs' directories, not the host's ``/tmp``; the sandbox's root is remounted read-only, so the
job dir is the only writable path (``TMPDIR`` is ``<job dir>/tmp``). All namespaces are private (``--unshare-all``); with
``network: true`` the host network is shared back (``--share-net``), with ``network: false`` the
job has only a loopback device. ``--die-with-parent`` ties the sandbox to its supervisor.

There is no silent fallback: when ``bwrap`` is missing or cannot create namespaces here,
``check_available`` raises ``SandboxUnavailable`` with a one-line fix.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from assay.core.errors import SandboxUnavailable

_SYSTEM_DIRS = ("/usr", "/etc", "/opt")
_TOP_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


@functools.lru_cache(maxsize=1)
def _probe() -> str | None:
    """None when bwrap works here, else why not (cached per process)."""
    binary = shutil.which("bwrap")
    if binary is None:
        return "bubblewrap (bwrap) is not installed"
    try:
        result = subprocess.run(
            [binary, "--unshare-all", "--ro-bind", "/", "/", "true"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap cannot run: {exc}"
    if result.returncode != 0:
        reason = result.stderr.decode(errors="replace").strip().splitlines()
        return f"bwrap cannot create a sandbox here: {reason[-1] if reason else result.returncode}"
    return None


def check_available() -> None:
    """Raise ``SandboxUnavailable`` (one line, with the fix) when the sandbox cannot run."""
    problem = _probe()
    if problem is not None:
        raise SandboxUnavailable(
            f"{problem}; jobs in sandboxed environments are refused rather than run "
            "unisolated: install bubblewrap (apt-get install bubblewrap / dnf install "
            "bubblewrap) or use an environment with isolation: none"
        )


def available() -> bool:
    return _probe() is None


def _resolved(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    seen: dict[str, Path] = {}
    for raw in paths:
        path = Path(raw).resolve()
        if path.exists():
            seen[str(path)] = path
    return list(seen.values())


def _code_paths() -> list[Path]:
    import assay

    return _resolved(
        [
            sys.prefix,
            sys.base_prefix,
            Path(sys.executable).resolve().parent,
            Path(assay.__file__).parents[1],
        ]
    )


def bwrap_argv(
    argv: Sequence[str],
    *,
    workdir: Path,
    binds: Mapping[Path, Path],
    network: bool,
    ro_paths: Iterable[str] = (),
    hidden: Iterable[Path] = (),
) -> list[str]:
    """The ``bwrap ... -- argv`` command line for a job in ``workdir``.

    ``binds`` maps mount points under ``workdir/inputs`` (which must exist) to the input
    sources bound there read-only. ``hidden`` paths (``ASSAY_HOME``) get an empty tmpfs over them
    in case a read-only bind above happened to contain them.
    """
    check_available()
    command = ["bwrap", "--unshare-all", "--die-with-parent"]
    if network:
        command.append("--share-net")
    for directory in _SYSTEM_DIRS:
        if Path(directory).is_dir():
            command += ["--ro-bind", directory, directory]
    for link in _TOP_LINKS:
        path = Path(link)
        if path.is_symlink():
            command += ["--symlink", os.readlink(path), link]
        elif path.is_dir():
            command += ["--ro-bind", link, link]
    command += ["--proc", "/proc", "--dev", "/dev"]
    arg_paths = [a for a in argv if a.startswith("/") and Path(a).exists()]
    read_only = _resolved([*map(str, _code_paths()), *ro_paths, *arg_paths])
    for path in read_only:
        command += ["--ro-bind", str(path), str(path)]
    for path in hidden:
        resolved = Path(path).resolve()
        if any(resolved.is_relative_to(p) for p in read_only):
            command += ["--tmpfs", str(resolved)]
    workdir = workdir.resolve()
    command += ["--bind", str(workdir), str(workdir)]
    for target, source in binds.items():
        command += ["--ro-bind", str(Path(source).resolve()), str(Path(target).absolute())]
    # The sandbox's root is a tmpfs holding the mount points; read-only, so the job dir is the
    # only place a job can write (there is no writable /tmp: TMPDIR points into the job dir).
    command += ["--remount-ro", "/", "--chdir", str(workdir), "--", *argv]
    return command
