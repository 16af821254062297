"""Rendering for the command line: JSON documents, Rich tables, times, sizes and errors.

Human output goes through a Rich console on stdout (no colour or markup taken from data: every
cell from the catalog is a ``Text``). Machine output is exactly one JSON document on stdout.
Errors are one line on stderr.

Rich is imported when something is first rendered with it, not with this module: a long
listing (``ls`` at 1,000 bundles) and JSON output never need it.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

from assay.cli.session import session

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Table
    from rich.text import Text

    from assay.core.records import BundleRecord, FileEntry

#: Width used when stdout is not a terminal (pipes, files, tests), unless COLUMNS says otherwise.
PLAIN_WIDTH = 100


# -- plain values ---------------------------------------------------------------------------
def local_time(seconds: float | None) -> str:
    """Epoch seconds as local ``YYYY-MM-DD HH:MM:SS`` (what a person reads)."""
    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")


def iso_time(seconds: float | None) -> str | None:
    """Epoch seconds as ISO 8601 in UTC (what a program reads)."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def short(uuid: str | None, length: int = 8) -> str:
    return uuid[:length] if uuid else ""


def tags_text(tags: Mapping[str, str], separator: str = ", ") -> str:
    return separator.join(f"{key}={value}" for key, value in sorted(tags.items()))


def bundle_ref(record: BundleRecord) -> str:
    return f"{record.name}@{short(record.uuid)}"


# -- JSON -----------------------------------------------------------------------------------
def _json_default(value: Any) -> Any:
    cls = type(value)
    if cls.__name__ == "DataFrame" and cls.__module__.startswith("pandas"):
        return json.loads(value.to_json(orient="records", date_format="iso"))
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return finite(sorted(value, key=str))
    if hasattr(value, "item") and cls.__module__ == "numpy":
        return finite(value.item())
    return str(value)


def finite(value: Any) -> Any:
    """``value`` with every NaN, Infinity and -Infinity float replaced by None (JSON ``null``).

    JSON has no such numbers; Python's ``json`` would write the non-standard tokens ``NaN`` and
    ``Infinity`` that strict parsers (``jq``, JavaScript, Go) reject. Containers are copied only
    as deep as needed; other values are returned as they are.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def to_json(value: Any) -> str:
    """One valid JSON document (RFC 8259): non-finite floats become ``null`` (see ``finite``)."""
    return json.dumps(
        finite(value), indent=2, default=_json_default, ensure_ascii=False, allow_nan=False
    )


def write_json(value: Any) -> None:
    sys.stdout.write(to_json(value) + "\n")
    sys.stdout.flush()


def bundle_dict(record: BundleRecord, files: Sequence[FileEntry] | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "uuid": record.uuid,
        "context": record.context,
        "name": record.name,
        "processing_name": record.processing_name,
        "owner": record.owner,
        "created": iso_time(record.created),
        "committed": record.committed,
        "content_hash": record.content_hash,
        "presentation": record.presentation,
        "file_count": record.file_count,
        "total_size": record.total_size,
        "tags": dict(record.tags),
        "params": dict(record.params),
        "code_version": dict(record.code_version),
        "start_time": iso_time(record.start_time),
        "stop_time": iso_time(record.stop_time),
        "dependencies": [
            {"uuid": d.uuid, "kind": d.kind, "arg_name": d.arg_name} for d in record.dependencies
        ],
    }
    if files is not None:
        document["files"] = [
            {"path": f.path, "size": f.size, "blob_hash": f.blob_hash} for f in files
        ]
    return document


# -- Rich -----------------------------------------------------------------------------------
def make_console(stderr: bool = False) -> Console:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    is_terminal = stream.isatty()
    width = None if is_terminal else _plain_width()
    return Console(file=stream, highlight=False, width=width, soft_wrap=False)


def _plain_width() -> int:
    try:
        return max(40, int(os.environ.get("COLUMNS", "")))
    except ValueError:
        return PLAIN_WIDTH


def cell(value: Any) -> Text:
    """A table cell that shows ``value`` literally (no Rich markup from user data)."""
    from rich.text import Text

    return Text("" if value is None else str(value))


def table(*columns: str, title: str | None = None) -> Table:
    from rich import box
    from rich.table import Table

    result = Table(
        *columns,
        title=title,
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        header_style="bold",
        title_justify="left",
    )
    return result


def key_value_table(rows: Iterable[tuple[str, Any]]) -> Table:
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in rows:
        grid.add_row(key, value if isinstance(value, Text) else cell(value))
    return grid


def bundles_table(records: Sequence[BundleRecord], title: str | None = None) -> Table:
    """The listing used by ``ls`` and ``search``: one row per bundle version."""
    result = table(title=title)
    longest_name = max((len(record.name) for record in records), default=4)
    result.add_column("name", overflow="fold", min_width=min(24, max(4, longest_name)))
    result.add_column("uuid", no_wrap=True)
    result.add_column("created", no_wrap=True)
    result.add_column("commit", no_wrap=True)
    result.add_column("type", no_wrap=True)
    result.add_column("files", justify="right", no_wrap=True)
    result.add_column("size", justify="right", no_wrap=True)
    result.add_column("tags", overflow="fold", min_width=18)
    for record in records:
        result.add_row(
            cell(record.name),
            cell(short(record.uuid)),
            cell(local_time(record.created)[:16]),  # to the minute: `show` has seconds
            cell("yes" if record.committed else "no"),
            cell(record.presentation),
            cell(record.file_count),
            cell(human_size(record.total_size)),
            cell(tags_text(record.tags, separator="\n")),
        )
    return result


#: Listings longer than a screen print as plain aligned text: Rich measures and wraps every cell
#: of a table, which took about a second for 1,000 bundles.
PLAIN_LISTING_ROWS = 40
_LISTING_HEADERS = ("name", "uuid", "created", "commit", "type", "files", "size", "tags")
_RIGHT_ALIGNED = {5, 6}


def print_bundles(out: Output, records: Sequence[BundleRecord]) -> None:
    """The ``ls``/``search`` listing: a Rich table, or plain columns when it is long."""
    if len(records) <= PLAIN_LISTING_ROWS:
        out.console.print(bundles_table(records))
        return
    rows = [
        (
            record.name,
            short(record.uuid),
            local_time(record.created)[:16],
            "yes" if record.committed else "no",
            record.presentation,
            str(record.file_count),
            human_size(record.total_size),
            tags_text(record.tags).replace("\n", " "),
        )
        for record in records
    ]
    widths = [
        max(len(header), *(len(row[i]) for row in rows))
        for i, header in enumerate(_LISTING_HEADERS)
    ]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            text.rjust(width) if i in _RIGHT_ALIGNED else text.ljust(width)
            for i, (text, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    lines = [line(_LISTING_HEADERS), line(["-" * w for w in widths]), *map(line, rows)]
    out.write("\n".join(lines) + "\n")


# -- one command's output -------------------------------------------------------------------
@dataclass
class Output:
    """Where one command writes: JSON or Rich, chosen by ``--json``."""

    json: bool
    _console: Console | None = field(default=None, repr=False)

    @classmethod
    def of(cls, ctx: typer.Context) -> Output:
        return cls(json=session(ctx).json)

    @property
    def console(self) -> Console:
        if self._console is None:
            self._console = make_console()
        return self._console

    def write(self, text: str) -> None:
        """Plain text as it is (no Rich), where the console writes."""
        stream = self._console.file if self._console is not None else sys.stdout
        stream.write(text)
        stream.flush()

    def emit(
        self,
        payload: Any,
        human: RenderableType | Callable[[Console], None] | None = None,
    ) -> None:
        """``payload`` as JSON under ``--json``; otherwise ``human`` (a renderable, a text
        shown literally, or a function that prints to the console)."""
        if self.json:
            write_json(payload)
        elif callable(human):
            human(self.console)
        elif isinstance(human, str):
            self.console.print(cell(human))
        elif human is not None:
            self.console.print(human)


# -- errors ---------------------------------------------------------------------------------
def one_line(message: str) -> str:
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


def report_error(
    message: str,
    code: str,
    as_json: bool,
    details: Mapping[str, Any] | None = None,
    prefix: str = "error",
) -> None:
    """``<prefix>: <message>`` on one stderr line; with ``--json`` also a JSON error on stdout."""
    text = one_line(message)
    if as_json:
        write_json({"error": {"code": code, "message": text, **(details or {})}})
    sys.stderr.write(f"{prefix}: {text}\n")
    sys.stderr.flush()
