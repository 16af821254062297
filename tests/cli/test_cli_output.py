"""Rendering helpers and the progress bar that appears only for large work on a terminal."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from assay.cli.output import human_size, local_time, one_line, to_json
from assay.cli.progress import LARGE_ADD_BYTES, LARGE_ADD_FILES, LazyProgress, add_progress


def _terminal() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=True, width=100), buffer


def test_progress_stays_hidden_for_small_work() -> None:
    console, buffer = _terminal()
    with LazyProgress("adding", min_total=LARGE_ADD_BYTES, console=console) as bar:
        for done in range(1, 11):
            bar(done * 1024, 10 * 1024)
    assert not bar.shown
    assert buffer.getvalue() == ""


def test_progress_shows_for_many_bytes() -> None:
    console, buffer = _terminal()
    total = LARGE_ADD_BYTES + 1
    with LazyProgress("adding raw", min_total=LARGE_ADD_BYTES, console=console) as bar:
        bar(total // 2, total)
        bar(total, total)
    assert bar.shown
    assert "adding raw" in buffer.getvalue()


def test_progress_shows_for_many_files() -> None:
    console, _ = _terminal()
    bar = LazyProgress(
        "adding", min_total=LARGE_ADD_BYTES, min_steps=LARGE_ADD_FILES, console=console
    )
    with bar:
        for done in range(LARGE_ADD_FILES):
            bar(done, 10 * LARGE_ADD_FILES)
        assert not bar.shown
        bar(LARGE_ADD_FILES, 10 * LARGE_ADD_FILES)
        bar(LARGE_ADD_FILES + 1, 10 * LARGE_ADD_FILES)
        assert bar.shown


def test_progress_never_shows_off_a_terminal() -> None:
    buffer = io.StringIO()
    bar = LazyProgress("adding", min_total=0, console=Console(file=buffer))
    with bar:
        bar(LARGE_ADD_BYTES * 2, LARGE_ADD_BYTES * 2)
    assert not bar.shown and buffer.getvalue() == ""
    assert not add_progress("raw").enabled  # the test's stderr is not a terminal


def test_human_size() -> None:
    assert human_size(0) == "0 B"
    assert human_size(1023) == "1023 B"
    assert human_size(1536) == "1.5 KiB"
    assert human_size(64 * 1024 * 1024) == "64.0 MiB"


def test_local_time_format() -> None:
    assert len(local_time(0)) == len("YYYY-MM-DD HH:MM:SS")
    assert local_time(None) == ""


def test_one_line() -> None:
    assert one_line("first\n  second\n\nthird") == "first second third"


def test_to_json_handles_paths_and_sets() -> None:
    assert json.loads(to_json({"p": Path("/x"), "s": {"b", "a"}, "t": (1, 2)})) == {
        "p": "/x",
        "s": ["a", "b"],
        "t": [1, 2],
    }
