"""Process groups and limits, through the util-linux wrappers and through the fallback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assay.jobs import process

REPORT = (
    "import json, os, resource\n"
    "print(json.dumps({'as': resource.getrlimit(resource.RLIMIT_AS)[0],"
    " 'cpu': resource.getrlimit(resource.RLIMIT_CPU)[0],"
    " 'fsize': resource.getrlimit(resource.RLIMIT_FSIZE)[0],"
    " 'cores': sorted(os.sched_getaffinity(0)),"
    " 'leader': os.getpgid(0) == os.getpid() == os.getsid(0)}))"
)
LIMITS = process.Limits(cpu=1, ram_gb=1.5, disk_gb=0.5, max_duration_s=10)
EXPECTED = {
    "as": int(1.5 * process.GIB),
    "cpu": 11,
    "fsize": int(0.5 * process.GIB),
    "cores": [sorted(os.sched_getaffinity(0))[0]],
    "leader": True,
}


def _report(tmp_path: Path) -> dict[str, object]:
    proc = process.spawn(
        [sys.executable, "-c", REPORT],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"]},
        limits=LIMITS,
        stdout=subprocess.PIPE,
    )
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    return json.loads(out)  # type: ignore[no-any-return]


def test_limits_and_group_through_the_wrappers(tmp_path: Path) -> None:
    assert process.wrapped_argv(["x"], LIMITS) is not None, "util-linux tools missing here"
    assert _report(tmp_path) == EXPECTED


def test_limits_and_group_through_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "no-tools"
    empty.mkdir()
    saved = os.environ["PATH"]
    monkeypatch.setenv("PATH", str(empty))
    process._tools.cache_clear()
    try:
        assert process.wrapped_argv(["x"], LIMITS) is None
        proc = process.spawn(
            [sys.executable, "-c", REPORT],
            cwd=tmp_path,
            env={},
            limits=LIMITS,
            stdout=subprocess.PIPE,
        )
        out, _ = proc.communicate(timeout=60)
    finally:
        monkeypatch.setenv("PATH", saved)
        process._tools.cache_clear()
    assert json.loads(out) == EXPECTED


def test_a_missing_or_unexecutable_program_raises_like_exec(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"]}
    with pytest.raises(FileNotFoundError):
        process.spawn(["no-such-program-here"], cwd=tmp_path, env=env)
    with pytest.raises(FileNotFoundError):
        process.spawn(["./missing.sh"], cwd=tmp_path, env=env)
    script = tmp_path / "plain.sh"
    script.write_text("echo hi\n")
    with pytest.raises(PermissionError):
        process.spawn([str(script)], cwd=tmp_path, env=env)


def test_describe_exit() -> None:
    assert process.describe_exit(3) == "exited with code 3"
    assert process.describe_exit(-9) == "killed by SIGKILL"
