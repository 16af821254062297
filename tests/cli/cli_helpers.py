"""Driving the real ``assay`` command line in-process (Typer's CliRunner).

``cli(...)`` runs one command and returns its exit code, stdout and stderr separately;
``expect_error`` checks the error contract (exit code, exactly one ``error: ...`` line on
stderr); ``catalog_state`` and ``store_blobs`` snapshot what is stored, so a test can assert
that a refused command lost or half-wrote nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from assay import api
from assay.bundles import operations
from assay.bundles.workspace import open_workspace
from assay.cli.main import app


@dataclass(frozen=True)
class Run:
    args: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return (
            f"assay {' '.join(self.args)} -> exit {self.exit_code}\n"
            f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}"
        )


def invoke(*args: str | Path) -> Run:
    argv = tuple(str(a) for a in args)
    result = CliRunner().invoke(app, list(argv), catch_exceptions=False)
    return Run(argv, result.exit_code, result.stdout, result.stderr)


def ok(*args: str | Path) -> Run:
    """Run a command that must succeed, quietly (nothing on stderr)."""
    run = invoke(*args)
    assert run.exit_code == 0, str(run)
    assert run.stderr == "", str(run)
    return run


def expect_error(run: Run, exit_code: int, *fragments: str) -> str:
    """The failure contract: the exit code, and exactly one ``error: ...`` line on stderr."""
    assert run.exit_code == exit_code, str(run)
    lines = run.stderr.splitlines()
    assert len(lines) == 1, str(run)
    assert lines[0].startswith("error: "), str(run)
    assert "Traceback" not in run.stdout + run.stderr
    for fragment in fragments:
        assert fragment in lines[0], str(run)
    return lines[0]


def catalog_state() -> dict[str, list[tuple[Any, ...]]]:
    """Every context with every bundle version (uuid, name, committed, tags, hash)."""
    workspace = open_workspace()
    return {
        info.name: sorted(
            (r.uuid, r.name, r.committed, tuple(sorted(r.tags.items())), r.content_hash)
            for r in operations.search(workspace, info.name)
        )
        for info in api.ls_contexts()
    }


def store_blobs(home: Path) -> list[str]:
    objects = home / "store" / "objects"
    if not objects.exists():
        return []
    return sorted(str(p.relative_to(objects)) for p in objects.rglob("*") if p.is_file())
