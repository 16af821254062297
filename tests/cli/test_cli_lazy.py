"""A CLI that answers at once: ``assay --help``, ``--version`` and shell completion of a
command's name import no command module, hence neither SQLAlchemy nor pandas (nor does
completing the options of ``search``); ``ls`` and ``search`` import neither pydantic nor Rich;
the help table of lazily loaded commands matches them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import typer.main

from assay.cli import lazy
from assay.cli.main import app
from helpers import PYTHON

_HEAVY = ("sqlalchemy", "pandas", "assay.catalog", "assay.bundles", "assay.api")


def _imported_by(*args: str, env: dict[str, str] | None = None) -> tuple[set[str], str]:
    """Modules a fresh ``python -X importtime -m assay.cli.main ARGS`` imports, and stdout."""
    result = subprocess.run(
        [PYTHON, "-X", "importtime", "-m", "assay.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
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

    heavy = _heavy(modules)
    if args == ("context", "--help"):
        # Loading one group imports that group's module only; its help still shows.
        assert "switch" in out
        return
    assert heavy == []
    # Help is Click's plain text: Rich (and the Markdown parser Typer's Rich help pulls in)
    # would cost more than the rest of the command.
    assert _heavy(modules, ("rich", "markdown_it")) == []
    assert out.strip()


def _heavy(modules: set[str], heavy: tuple[str, ...] = _HEAVY) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in heavy or m.startswith(heavy))


def _complete(words: str) -> tuple[set[str], str]:
    """What bash completion asks ``assay`` for (the script ``--show-completion bash`` prints)."""
    cword = str(len(words.split()) - (0 if words.endswith(" ") else 1))
    env = {"_ASSAY_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": cword}
    return _imported_by(env=env)


def test_completing_a_command_name_imports_no_command() -> None:
    modules, out = _complete("assay l")

    assert out.split() == ["ls", "lineage", "localize"]
    assert _heavy(modules, (*_HEAVY, "pydantic", "rich")) == []


def test_completing_the_options_of_a_listing_command_imports_no_catalog() -> None:
    modules, out = _complete("assay search --")

    assert {"--tag", "--before", "--committed", "--json"} <= set(out.split())
    # browse.py imports the catalog when a command runs, not when it is loaded.
    assert _heavy(modules, (*_HEAVY, "pydantic")) == []


def test_the_completion_script_is_shown() -> None:
    _modules, out = _imported_by("--show-completion", "bash")

    assert "_ASSAY_COMPLETE=complete_bash" in out


def test_long_listings_and_searches_import_neither_pydantic_nor_rich(
    sqlite_home: Path, tmp_path: Path
) -> None:
    from assay import api
    from assay.cli.output import PLAIN_LISTING_ROWS

    api.context("many")
    api.switch("many")
    source = tmp_path / "one.txt"
    source.write_text("x")
    count = 2 * (PLAIN_LISTING_ROWS + 1)  # each search below lists more than a screen
    for i in range(count):
        api.add("many", f"b-{i:03}", source, tags={"team": f"t{i % 2}"})

    for args in (
        ("ls",),
        ("search", "--tag", "team=t0", "--after", "2000-01-01"),
        ("--json", "ls"),
    ):
        modules, out = _imported_by(*args)

        assert _heavy(modules, ("pydantic", "rich")) == [], args
        assert "sqlalchemy" in modules, "the listing did not run: the test proves nothing"
        assert "b-000" in out, args
        assert ("b-001" in out) is (args[0] != "search"), args


def test_text_parameters_read_as_typers_own_conversion_reads_them() -> None:
    from typer._coercion import build_runtime_param

    from assay.cli.plainparams import PlainRuntimeParam

    checked = 0
    for spec in lazy.COMMANDS:
        command = lazy.load(spec.name)
        commands = [command, *getattr(command, "commands", {}).values()]
        for param in (p for c in commands if c is not None for p in c.params):
            runtime = getattr(param, "_runtime_param", None)
            if not isinstance(runtime, PlainRuntimeParam):
                continue
            ctx = typer.Context(command)
            typer_own = build_runtime_param(param.type_descriptor)
            for value in (None, "x", "12", ("a", "b=c"), 3, 2.5, True):
                try:
                    expected = typer_own.coerce(value, param=param, ctx=ctx)
                except Exception as error:  # Typer refuses it: so must the plain reader
                    with pytest.raises(type(error)):
                        runtime.coerce(value, param=param, ctx=ctx)
                    continue
                got = runtime.coerce(value, param=param, ctx=ctx)
                assert got == expected and type(got) is type(expected), (param.name, value)
                checked += 1
    assert checked > 100


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
