"""Data previews for the bundle page: the first rows of each DataFrame a bundle holds.

A DataFrame is saved as a Parquet file in the bundle (``{"$assay": {"kind": "dataframe"}}``
in its data document). The preview reads only the first ``ROWS`` rows of the verified blob
with pyarrow (the ``dataframe`` extra): a 10 GB frame costs one row group, not the file. Without
pyarrow the page says which extra to install. A dataset published for compute access shows
no rows (its bytes never leave; ``compute_access.check_download``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from assay.bundles.file_access import verified_file
from assay.bundles.presentation import MARKER
from assay.bundles.workspace import Workspace
from assay.core.errors import AssayError
from assay.core.records import BundleRecord
from assay.server.compute_access import check_download

ROWS = 20
MAX_COLUMNS = 50
CELL_CHARS = 80


@dataclass
class FramePreview:
    path: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    total_rows: int | None = None
    note: str = ""


def frame_paths(document: Any) -> Iterator[str]:
    """Bundle paths of the DataFrames in a data document, in document order."""
    if isinstance(document, list):
        for item in document:
            yield from frame_paths(item)
    elif isinstance(document, dict):
        marker = document.get(MARKER)
        if isinstance(marker, dict) and marker.get("kind") == "dataframe":
            yield str(marker["path"])
        elif isinstance(marker, dict):
            yield from frame_paths(marker.get("items"))
        else:
            for value in document.values():
                yield from frame_paths(value)


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


def frame_previews(workspace: Workspace, record: BundleRecord, user: str) -> list[FramePreview]:
    paths = list(frame_paths(record.data))
    if not paths:
        return []
    try:
        check_download(workspace, record, user)
    except AssayError as refused:
        return [FramePreview(p, note=refused.message) for p in paths]
    try:
        import pyarrow.parquet as pq
    except ImportError:
        note = "install assay[dataframe] (pyarrow) on the server to preview DataFrames"
        return [FramePreview(p, note=note) for p in paths]
    previews = []
    for path in paths:
        try:
            _entry, blob = verified_file(workspace, record, path)
        except AssayError as error:  # corrupted or missing blob: say so, show nothing
            previews.append(FramePreview(path, note=error.message))
            continue
        parquet = pq.ParquetFile(blob)
        names = [n for n in parquet.schema_arrow.names if not n.startswith("__index_level_")]
        shown = names[:MAX_COLUMNS]
        batch = next(parquet.iter_batches(batch_size=ROWS, columns=shown), None)
        rows: list[list[str]] = []
        if batch is not None:
            columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
            rows = [[_cell(col[r]) for col in columns] for r in range(batch.num_rows)]
        note = (
            f"{len(names) - len(shown)} more columns not shown" if len(names) > len(shown) else ""
        )
        previews.append(FramePreview(path, shown, rows, parquet.metadata.num_rows, note))
    return previews
