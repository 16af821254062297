"""The benchmark's input data: one big random file and a folder of many small random files.

Generated once under ``bench/.work/data/`` and reused; a JSON marker beside each data set
records what was generated, so a half-written set is regenerated, never reused.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class Dataset:
    """One input: ``key`` names it in the results, ``path`` is a file or a folder."""

    key: str
    label: str
    path: Path
    files: int
    bytes: int
    measures_throughput: bool = True


def _marker(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _is_current(dataset: Dataset) -> bool:
    marker = _marker(dataset.path)
    if not (marker.is_file() and dataset.path.exists()):
        return False
    recorded = json.loads(marker.read_text())
    return recorded == {"files": dataset.files, "bytes": dataset.bytes}


def _write_random_file(path: Path, size: int) -> None:
    with open(path, "wb") as handle:
        remaining = size
        while remaining:
            chunk = min(remaining, _CHUNK)
            handle.write(os.urandom(chunk))
            remaining -= chunk


def _generate(dataset: Dataset, file_size: int) -> None:
    _marker(dataset.path).unlink(missing_ok=True)
    if dataset.path.is_dir():
        shutil.rmtree(dataset.path)
    dataset.path.unlink(missing_ok=True)
    if dataset.files == 1:
        _write_random_file(dataset.path, dataset.bytes)
    else:
        dataset.path.mkdir(parents=True)
        for index in range(dataset.files):
            _write_random_file(dataset.path / f"f{index:05d}.bin", file_size)
    record = {"files": dataset.files, "bytes": dataset.bytes}
    _marker(dataset.path).write_text(json.dumps(record) + "\n")


def ensure_datasets(
    data_dir: Path, big_bytes: int, small_count: int, small_size: int
) -> list[Dataset]:
    """The big file and the small-files folder, generated unless already present."""
    data_dir.mkdir(parents=True, exist_ok=True)
    big_mib = big_bytes // 2**20
    big = Dataset(
        key="big_file",
        label=f"1 file x {big_mib} MiB",
        path=data_dir / f"big-{big_mib}MiB.bin",
        files=1,
        bytes=big_bytes,
    )
    small = Dataset(
        key="small_files",
        label=f"{small_count:,} files x {small_size // 1024} KiB",
        path=data_dir / f"small-{small_count}x{small_size // 1024}KiB",
        files=small_count,
        bytes=small_count * small_size,
    )
    for dataset, file_size in ((big, big_bytes), (small, small_size)):
        if not _is_current(dataset):
            _generate(dataset, file_size)
    return [big, small]


def describe(dataset: Dataset) -> dict[str, object]:
    """The data set as plain JSON-able data."""
    record = asdict(dataset)
    record["path"] = str(dataset.path)
    return record


def startup_dataset(data_dir: Path) -> Dataset:
    """A one-byte file: what a tool costs when there is almost nothing to ingest."""
    path = data_dir / "tiny.bin"
    if not path.is_file():
        path.write_bytes(b"x")
    return Dataset(
        key="startup",
        label="start-up (1 byte)",
        path=path,
        files=1,
        bytes=1,
        measures_throughput=False,
    )


def read_all(dataset: Dataset) -> None:
    """Read every byte of the data set, so the timed step that follows finds it in the cache."""
    buffer = bytearray(_CHUNK)
    paths = [dataset.path] if dataset.path.is_file() else sorted(dataset.path.iterdir())
    for path in paths:
        with open(path, "rb", buffering=0) as handle:
            while handle.readinto(buffer):
                pass
