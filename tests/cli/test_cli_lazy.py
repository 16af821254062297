"""A CLI that answers at once: ``assay --help`` and ``--version`` import no command module,
hence neither SQLAlchemy nor pandas; the help table of lazily loaded commands matches them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import typer.main

from assay.cli import lazy
from assay.cli.main import app
from helpers import PYTHON

_HEAVY = ("sqlalchemy", "pandas", "assay.catalog", "assay.bundles", "assay.api")


def _imported_by(*args: str) -> tuple[set[str], str]:
    """Modules a fresh ``python -X importtime -m assay.cli.main ARGS`` imports, and stdout."""
    result = subprocess.run(
        [PYTHON, "-X", "importtime", "-m", "assay.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    modules = {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "typer" in modules, "importtime output was not captured: the test proves nothing"
    return modules, result.stdout


@pytest.mark.parametrize("args", [("--help",), ("--version",), ("context", "--help")])
def test_help_and_version_import_no_catalog_nor_pandas(args: tuple[str, ...]) -> None:
    modules, out = _imported_by(*args)

    heavy = sorted(m for m in modules if m.split(".")[0] in _HEAVY or m.startswith(_HEAVY))
    if args == ("context", "--help"):
        # Loading one group imports that group's module only; its help still shows.
        assert "switch" in out
        return
    assert heavy == []
    assert out.strip()


def test_root_help_lists_every_command() -> None:
    _modules, out = _imported_by("--help")
    for command in lazy.COMMANDS:
        assert command.name in out


def test_the_help_table_matches_each_command() -> None:
    for spec in lazy.COMMANDS:
        command = lazy.load(spec.name)
        assert command is not None
        assert command.get_short_help_str(limit=300) == spec.help, spec.name


def test_every_lazy_command_loads_and_runs_its_help() -> None:
    group = typer.main.get_command(app)
    for spec in lazy.COMMANDS:
        command = lazy.load(spec.name)
        assert command is not None and command.name == spec.name
    ctx = group.make_context("assay", ["ls", "--help"], resilient_parsing=True)
    assert group.get_command(ctx, "ls") is lazy.load("ls")
    assert group.get_command(ctx, "no-such-command") is None


def test_a_long_listing_prints_every_bundle_as_aligned_plain_columns(
    sqlite_home: Path, tmp_path: Path
) -> None:
    from cli_helpers import ok

    from assay import api
    from assay.cli.output import PLAIN_LISTING_ROWS

    api.context("many")
    source = tmp_path / "one.txt"
    source.write_text("x")
    count = PLAIN_LISTING_ROWS + 1
    for i in range(count):
        api.add("many", f"b-{i:03}", source, tags={"team": f"t{i % 2}"})

    lines = ok("ls", "-c", "many").stdout.splitlines()

    assert lines[0].split() == [
        "name",
        "uuid",
        "created",
        "commit",
        "type",
        "files",
        "size",
        "tags",
    ]
    assert len(lines) == 2 + count
    assert sorted(line.split()[0] for line in lines[2:]) == [f"b-{i:03}" for i in range(count)]
    # Aligned: every row's uuid starts in the same column.
    assert len({line.find(line.split()[1], len(line.split()[0])) for line in lines[2:]}) == 1
    assert all("team=t" in line for line in lines[2:])
