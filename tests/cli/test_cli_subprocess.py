"""The installed ``assay`` executable, run as a real process: exit codes and stderr lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import ok

ASSAY = Path(sys.executable).parent / "assay"

pytestmark = pytest.mark.skipif(not ASSAY.exists(), reason=f"no assay executable at {ASSAY}")


def _run(home: Path, *args: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    environment.update({"ASSAY_HOME": str(home), **env})
    environment.pop("COLUMNS", None)
    return subprocess.run(
        [str(ASSAY), *map(str, args)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_exit_codes_and_one_line_errors(sqlite_home: Path, tmp_path: Path) -> None:
    data = tmp_path / "a.txt"
    data.write_text("hello\n")

    ok("context", "create", "lab")  # set-up in-process: only the checks pay a process start
    result = _run(sqlite_home, "ls")  # contexts exist, none is current: an error, not a guess
    assert result.returncode == 2
    assert "no current context" in _one_error_line(result)

    ok("context", "switch", "lab")
    added = _run(sqlite_home, "add", "raw", data, "--json")
    assert added.returncode == 0, added.stderr
    assert added.stderr == ""
    assert json.loads(added.stdout)["bundle"]["name"] == "raw"

    missing = _run(sqlite_home, "show", "nope")
    assert missing.returncode == 3
    assert "no bundle named or with uuid 'nope'" in _one_error_line(missing)

    bad_path = _run(sqlite_home, "add", "raw", tmp_path / "nope")
    assert bad_path.returncode == 2
    assert "path does not exist" in _one_error_line(bad_path)

    usage = _run(sqlite_home, "ls", "--bogus")
    assert usage.returncode == 2
    assert _one_error_line(usage) == "error: No such option: --bogus (see 'assay ls --help')"
    assert usage.stdout == ""

    version = _run(sqlite_home, "--version")
    assert version.returncode == 0
    assert version.stdout.startswith("assay ")


def test_corrupted_blob_exits_5(sqlite_home: Path, tmp_path: Path) -> None:
    data = tmp_path / "a.txt"
    data.write_text("hello world\n")
    ok("context", "create", "lab")
    ok("context", "switch", "lab")
    uuid = ok("add", "raw", data, "--json").json()["bundle"]["uuid"]
    blob_hash = ok("show", "raw", "--json").json()["files"][0]["blob_hash"]
    blob = sqlite_home / "store" / "objects" / blob_hash[:2] / blob_hash[2:]
    os.chmod(blob, 0o644)
    blob.write_bytes(b"HELLO WORLD\n")

    result = _run(sqlite_home, "verify")
    assert result.returncode == 5
    line = _one_error_line(result)
    assert f"raw@{uuid[:8]}" in line and "a.txt" in line and blob_hash[:12] in line

    result = _run(sqlite_home, "cat", "raw")
    assert result.returncode == 5
    assert "corrupted" in _one_error_line(result)


def test_unreachable_catalog_exits_6_with_the_password_masked(tmp_path: Path) -> None:
    result = _run(
        tmp_path / "home",
        "context",
        "ls",
        ASSAY_CATALOG_URL="postgresql+psycopg://u:pw@127.0.0.1:1/x",
    )
    assert result.returncode == 6
    line = _one_error_line(result)
    assert "cannot reach the catalog" in line
    assert "u:***@127.0.0.1:1/x" in line
    assert ":pw@" not in result.stderr + result.stdout


def test_a_new_machine_needs_no_ceremony(tmp_path: Path) -> None:
    home = tmp_path / "new-home"  # does not exist yet: a new machine
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("a\n")

    added = _run(home, "add", "x", data, "--json")
    listed = _run(home, "ls", "--json")

    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["bundle"]["context"] == "default"
    assert listed.returncode == 0, listed.stderr
    assert [entry["name"] for entry in json.loads(listed.stdout)] == ["x"]
    assert listed.stderr == ""


def test_usage_error_under_json_is_one_json_document(tmp_path: Path) -> None:
    result = _run(tmp_path / "home", "--json", "add")
    assert result.returncode == 2
    assert "Missing argument 'NAME'" in _one_error_line(result)
    assert json.loads(result.stdout)["error"]["code"] == "usage_error"
