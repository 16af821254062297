"""A process killed (SIGKILL) mid-add leaves nothing visible, and gc cleans up after it."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from assay import api
from helpers import (
    blob_files,
    catalog_counts,
    collect_everything,
    run_python,
    temp_files,
    write_files,
)

CTX = "work"


@pytest.fixture
def ctx(assay_home: Path, tmp_path: Path) -> str:
    api.context(CTX)
    api.add(CTX, "survivor", write_files(tmp_path / "survivor", {"s.txt": "keep me"}))
    return CTX


def _assert_killed(result: object) -> None:
    code = result.returncode  # type: ignore[attr-defined]
    assert code == -signal.SIGKILL, result.stderr  # type: ignore[attr-defined]


_KILL_HALFWAY = """
import os, signal, sys
from assay import api

def progress(done, total):
    if done * 3 >= total:  # a third of the bytes are in the store: die right here
        os.kill(os.getpid(), signal.SIGKILL)

api.add("work", "doomed", sys.argv[1], progress=progress)
print("finished")
"""


def test_killed_while_storing_small_files(ctx: str, tmp_path: Path, assay_home: Path) -> None:
    source = write_files(
        tmp_path / "big", {f"d{i % 7}/f{i:04}.bin": f"{i}" * 500 for i in range(600)}
    )
    rows = catalog_counts()
    blobs_before = set(blob_files(assay_home))

    result = run_python(_KILL_HALFWAY, str(source))

    _assert_killed(result)
    assert "finished" not in result.stdout
    assert catalog_counts() == rows  # nothing of the bundle is visible
    assert api.get(ctx, "doomed") is None
    orphans = set(blob_files(assay_home)) - blobs_before
    assert orphans, "the child died before storing anything: the test proves nothing"

    report = collect_everything()

    assert report.blobs_removed == len(orphans)
    assert set(blob_files(assay_home)) == blobs_before
    assert temp_files(assay_home) == []
    assert api.verify() == []
    assert Path(api.cat(ctx, "survivor")[0]).read_text() == "keep me"


_KILL_MID_BLOB = """
import os, signal, sys, threading, time
from pathlib import Path
from assay import api

store = Path(os.environ["ASSAY_HOME"]) / "store"

def has_temp():
    for folder in [store / "tmp", *(store / "objects").glob("??")]:
        try:
            if any(e.name.endswith(".part") for e in os.scandir(folder)):
                return True
        except FileNotFoundError:
            pass
    return False

def watch():
    while True:
        if has_temp():  # a blob is half written: die right now
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(0.0002)

threading.Thread(target=watch, daemon=True).start()
api.add("work", "doomed", sys.argv[1])
print("finished")
"""


def test_killed_while_writing_a_large_blob(ctx: str, tmp_path: Path, assay_home: Path) -> None:
    source = tmp_path / "large"
    source.mkdir()
    for i in range(3):
        (source / f"part{i}.bin").write_bytes(bytes([i]) * (24 << 20))
    rows = catalog_counts()
    blobs_before = set(blob_files(assay_home))

    result = run_python(_KILL_MID_BLOB, str(source))

    _assert_killed(result)
    assert catalog_counts() == rows
    assert api.get(ctx, "doomed") is None
    left = temp_files(assay_home)
    assert left, "no temp file was caught: the test proves nothing"
    for blob_hash, path in blob_files(assay_home).items():  # no partial blob was published
        if blob_hash not in blobs_before:
            assert path.stat().st_size == 24 << 20

    report = collect_everything()

    assert report.temp_files_removed == len(left)
    assert temp_files(assay_home) == []
    assert set(blob_files(assay_home)) == blobs_before
    assert api.verify() == []


_KILL_IN_BUNDLE = """
import os, signal, sys
from assay.bundle import Bundle

with Bundle("work", "doomed") as bundle:
    with bundle.make_file("out.txt").open("w") as handle:
        handle.write("half-made")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_gc_removes_the_staging_folder_of_a_killed_bundle(ctx: str, assay_home: Path) -> None:
    """A killed build leaves staging/<uuid>; gc must reclaim it (no live process holds it)."""
    result = run_python(_KILL_IN_BUNDLE)
    _assert_killed(result)
    assert api.get(ctx, "doomed") is None

    collect_everything()

    staging = assay_home / "staging"
    assert not staging.exists() or list(staging.iterdir()) == []
