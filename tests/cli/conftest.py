"""Fixtures for the command-line tests: a home with a current context, files to add."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cli_helpers import ok


@pytest.fixture(autouse=True)
def _plain_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Output as a pipe sees it: the CLI's own default width, no debug tracebacks."""
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("ASSAY_DEBUG", raising=False)


@pytest.fixture
def lab(sqlite_home: Path) -> Iterator[Path]:
    """A SQLite home with a context 'lab' that is the current context."""
    ok("context", "create", "lab")
    ok("context", "switch", "lab")
    yield sqlite_home


@pytest.fixture
def lab_any(assay_home: Path) -> Iterator[Path]:
    """Like ``lab``, on SQLite and on PostgreSQL."""
    ok("context", "create", "lab")
    ok("context", "switch", "lab")
    yield assay_home


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A small directory to add: two files, one in a subdirectory."""
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    (root / "x.csv").write_text("a,b\n1,2\n")
    (root / "sub" / "y.txt").write_text("hello\n")
    return root


@pytest.fixture
def make_file(tmp_path: Path) -> Callable[[str, str], Path]:
    def make(name: str, content: str) -> Path:
        path = tmp_path / "files" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        return path

    return make
