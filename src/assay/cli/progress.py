"""Progress bars on stderr that appear only for large work on a terminal.

A small add or verify finishes before a bar would be worth drawing, and a bar in a log file or
a pipe is noise; so the bar starts only when stderr is a terminal and the work turns out large
(by total, known at the first report, or by the number of steps reported so far).
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from assay.cli.output import make_console

#: An add is large, and gets a bar, past 64 MiB or 1,000 files.
LARGE_ADD_BYTES = 64 * 1024 * 1024
LARGE_ADD_FILES = 1000
#: A verify is large past 1,000 files.
LARGE_VERIFY_FILES = 1000


class LazyProgress:
    """A ``progress(done, total)`` callback that draws a bar once the work is large."""

    def __init__(
        self,
        description: str,
        *,
        unit: str = "bytes",
        min_total: int,
        min_steps: int | None = None,
        console: Console | None = None,
    ) -> None:
        self.description = description
        self.unit = unit
        self.min_total = min_total
        self.min_steps = min_steps
        self.console = console if console is not None else make_console(stderr=True)
        self.enabled = self.console.is_terminal
        self.steps = 0
        self.shown = False
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def _columns(self) -> list[ProgressColumn]:
        columns: list[ProgressColumn] = [TextColumn("{task.description}"), BarColumn()]
        if self.unit == "bytes":
            columns += [DownloadColumn(binary_units=True), TransferSpeedColumn()]
        else:
            columns += [MofNCompleteColumn(), TextColumn(self.unit)]
        columns.append(TimeRemainingColumn())
        return columns

    def _large(self, total: int) -> bool:
        if total > self.min_total:
            return True
        return self.min_steps is not None and self.steps > self.min_steps

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        self.steps += 1
        if self._progress is None:
            if not self._large(total):
                return
            self._progress = Progress(*self._columns(), console=self.console, transient=True)
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=total)
            self.shown = True
        assert self._task is not None
        self._progress.update(self._task, completed=done, total=total)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> LazyProgress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def add_progress(name: str) -> LazyProgress:
    return LazyProgress(
        f"adding {name}", unit="bytes", min_total=LARGE_ADD_BYTES, min_steps=LARGE_ADD_FILES
    )


def verify_progress() -> LazyProgress:
    return LazyProgress("verifying", unit="files", min_total=LARGE_VERIFY_FILES)
