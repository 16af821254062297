"""Facts about the machine and the software a benchmark ran with, for its JSON record."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _ram_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024**2, 1)
    return 0.0


def _filesystem(path: Path) -> dict[str, str]:
    """The mount holding ``path``: the longest mount point that is a prefix of it."""
    resolved = str(path.resolve())
    best = {"mount_point": "", "type": "unknown", "device": "unknown"}
    for line in Path("/proc/mounts").read_text().splitlines():
        device, mount_point, fs_type = line.split()[:3]
        inside = resolved == mount_point or resolved.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best["mount_point"]):
            best = {"mount_point": mount_point, "type": fs_type, "device": device}
    return best


_DAMON = Path("/sys/kernel/mm/damon/admin/kdamonds")


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def page_cache_reclaim() -> str | None:
    """Describe a running DAMON ``pageout`` scheme, which evicts idle page-cache pages."""
    for kdamond in sorted(_DAMON.glob("[0-9]*")):
        if _read(kdamond / "state") != "on":
            continue
        for context in kdamond.glob("contexts/[0-9]*"):
            aggregation_us = int(_read(context / "monitoring_attrs/intervals/aggr_us") or 0)
            for scheme in context.glob("schemes/[0-9]*"):
                if _read(scheme / "action") != "pageout":
                    continue
                min_age = int(_read(scheme / "access_pattern/age/min") or 0)
                idle_s = min_age * aggregation_us / 1e6
                return f"DAMON pageout reclaims memory idle for >= {idle_s:g} s"
    return None


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages: other work on the machine skews timings."""
    return [float(value) for value in _read(Path("/proc/loadavg")).split()[:3]]


def machine_info(work_dir: Path) -> dict[str, Any]:
    """CPU, memory, Python, kernel and the file system the benchmark wrote to."""
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "ram_gib": _ram_gib(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "work_dir": str(work_dir),
        "work_dir_filesystem": _filesystem(work_dir),
        "page_cache_reclaim": page_cache_reclaim(),
    }


def git_state(repo: Path) -> dict[str, Any]:
    """The commit the benchmark ran on and whether the tree had uncommitted changes."""

    def git(*args: str) -> str | None:
        result = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
        )
        return result.stdout.strip() if result.returncode == 0 else None

    status = git("status", "--porcelain")
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(status) if status else False}
