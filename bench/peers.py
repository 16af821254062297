"""Build isolated virtual environments for the peer tools the benchmarks compare against.

Each peer gets its own venv under ``bench/.peers/<name>/`` (git-ignored), installed from a
hash-pinned lock file in ``bench/locks/<name>.txt`` so every machine benchmarks the same set.
The venvs share no packages with Assay's own environment: they are created without system
site-packages and installed with ``--link-mode=copy``.

Usage::

    python bench/peers.py            # build what is missing (idempotent)
    python bench/peers.py --force    # rebuild every peer
    python bench/peers.py --lock     # re-resolve the lock files from PEERS, then build
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PEERS_DIR = BENCH_DIR / ".peers"
LOCKS_DIR = BENCH_DIR / "locks"
_MARKER = ".assay-bench-built"
# Copies, not links into uv's cache: no file is shared with another venv. Byte-compiled at
# install time, so no peer writes .pyc files during its first timed run.
_SYNC_FLAGS = ("--quiet", "--require-hashes", "--link-mode=copy", "--compile-bytecode")


@dataclass(frozen=True)
class Peer:
    """A peer tool: its name, the requirement it is locked from and a smoke test."""

    name: str
    requirement: str
    smoke_code: str

    @property
    def venv(self) -> Path:
        return PEERS_DIR / self.name

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def lock_file(self) -> Path:
        return LOCKS_DIR / f"{self.name}.txt"


PEERS: dict[str, Peer] = {
    "disdat": Peer(
        name="disdat",
        requirement="disdat==1.2.0",
        smoke_code="import disdat.api, importlib.metadata as m; print(m.version('disdat'))",
    ),
    "disdat-luigi": Peer(
        name="disdat-luigi",
        requirement="disdat-luigi==1.0.2",
        smoke_code=(
            "import disdatluigi.api, importlib.metadata as m; print(m.version('disdat-luigi'))"
        ),
    ),
    "dvc": Peer(
        name="dvc",
        requirement="dvc[s3]==3.67.1",
        smoke_code="import dvc.api, importlib.metadata as m; print(m.version('dvc'))",
    ),
    "octue": Peer(
        name="octue",
        requirement="octue==0.69.1",
        smoke_code="import octue, importlib.metadata as m; print(m.version('octue'))",
    ),
}


class PeerBuildError(RuntimeError):
    """A peer's venv could not be built; the message carries the failing command's output."""


def find_uv() -> str:
    """The uv binary: $UV, the project's .tools/bin/uv, or uv on PATH."""
    candidates = [os.environ.get("UV"), str(BENCH_DIR.parent / ".tools" / "bin" / "uv")]
    candidates.append(shutil.which("uv"))
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    raise PeerBuildError("uv not found: set $UV or install uv into .tools/bin/")


def default_python() -> str:
    """The interpreter behind the running one, so peers run on the same Python as Assay."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return str(Path(sys.base_prefix) / "bin" / version)


def _run(command: list[str], stdin: str | None = None) -> str:
    result = subprocess.run(command, input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()
        raise PeerBuildError(f"`{' '.join(command)}` failed ({result.returncode}): {output}")
    return result.stdout


def lock(peer: Peer, python: str) -> None:
    """Resolve ``peer.requirement`` into a hash-pinned lock file for ``python``'s version."""
    version = _run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]).strip()
    LOCKS_DIR.mkdir(exist_ok=True)
    command = [find_uv(), "pip", "compile", "-", "--quiet", "--generate-hashes"]
    command += ["--python-version", version, "--output-file", str(peer.lock_file)]
    command += ["--custom-compile-command", "python bench/peers.py --lock"]
    _run(command, stdin=peer.requirement + "\n")


def _fingerprint(peer: Peer, python: str) -> str:
    digest = hashlib.sha256(peer.lock_file.read_bytes())
    digest.update(python.encode())
    digest.update(" ".join(_SYNC_FLAGS).encode())
    return digest.hexdigest()


def is_built(peer: Peer, python: str) -> bool:
    """True when the peer's venv exists and was built from the current lock file."""
    marker = peer.venv / _MARKER
    if not (marker.is_file() and peer.python.exists() and peer.lock_file.is_file()):
        return False
    return marker.read_text().strip() == _fingerprint(peer, python)


def build(peer: Peer, python: str, force: bool = False) -> str:
    """Build the peer's venv unless it is already current; returns the peer's version."""
    if not peer.lock_file.is_file():
        lock(peer, python)
    if force or not is_built(peer, python):
        shutil.rmtree(peer.venv, ignore_errors=True)
        uv = find_uv()
        _run([uv, "venv", "--quiet", "--python", python, str(peer.venv)])
        sync = [uv, "pip", "sync", *_SYNC_FLAGS, "--python", str(peer.python)]
        _run([*sync, str(peer.lock_file)])
        (peer.venv / _MARKER).write_text(_fingerprint(peer, python) + "\n")
    return _run([str(peer.python), "-c", peer.smoke_code]).strip()


def build_all(python: str, force: bool = False) -> dict[str, str]:
    """Build every peer; maps name to its version, or to ``"error: ..."`` when it failed."""
    outcome: dict[str, str] = {}
    for peer in PEERS.values():
        try:
            outcome[peer.name] = build(peer, python, force=force)
        except PeerBuildError as error:
            outcome[peer.name] = f"error: {error}"
    return outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="rebuild even if current")
    parser.add_argument("--lock", action="store_true", help="re-resolve the lock files first")
    parser.add_argument("--python", default=default_python(), help="interpreter for the venvs")
    args = parser.parse_args()
    if args.lock:
        for peer in PEERS.values():
            lock(peer, args.python)
    outcome = build_all(args.python, force=args.force or args.lock)
    for name, version in outcome.items():
        print(f"{name}: {version}")
    return 1 if any(v.startswith("error:") for v in outcome.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
