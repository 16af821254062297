"""Bad files to add: each fails with a clear error, and nothing is lost or half-written."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from assay import api
from assay.bundles.workspace import close_workspaces
from assay.core.errors import PathNotFound, UnreadableFile
from assay.core.hashing import hash_bytes
from helpers import PYTHON, blob_files, catalog_counts, python_code, temp_files, write_files

CTX = "work"
NOBODY = 65534


@pytest.fixture
def ctx(assay_home: Path, tmp_path: Path) -> str:
    api.context(CTX)
    api.add(CTX, "baseline", write_files(tmp_path / "baseline", {"b.txt": "baseline"}))
    return CTX


class Unchanged:
    """Snapshot of the catalog rows, blobs and temp files, to compare after a failure."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.rows = catalog_counts()
        self.blobs = set(blob_files(home))

    def check(self) -> None:
        assert catalog_counts() == self.rows
        assert set(blob_files(self.home)) == self.blobs
        assert temp_files(self.home) == []


def test_broken_symlink_in_a_directory(ctx: str, tmp_path: Path, assay_home: Path) -> None:
    source = write_files(tmp_path / "d", {"a.txt": "a", "z.txt": "z"})
    (source / "m-link").symlink_to(tmp_path / "gone")
    before = Unchanged(assay_home)

    with pytest.raises(UnreadableFile, match=r"m-link: it is a broken symbolic link"):
        api.add(ctx, "d", source)

    before.check()


def test_fifo_in_a_directory(ctx: str, tmp_path: Path, assay_home: Path) -> None:
    source = write_files(tmp_path / "d", {"a.txt": "a"})
    os.mkfifo(source / "pipe")
    before = Unchanged(assay_home)

    with pytest.raises(UnreadableFile, match=r"pipe: not a regular file"):
        api.add(ctx, "d", source)
    with pytest.raises(UnreadableFile, match=r"not a regular file"):
        api.add(ctx, "p", source / "pipe")

    before.check()


def test_symlink_loop_in_a_directory(ctx: str, tmp_path: Path, assay_home: Path) -> None:
    source = write_files(tmp_path / "d", {"a.txt": "a"})
    (source / "self").symlink_to(source)
    before = Unchanged(assay_home)

    with pytest.raises(UnreadableFile, match="Too many levels of symbolic links"):
        api.add(ctx, "d", source)

    before.check()


def test_symlinks_to_files_and_folders_are_followed(ctx: str, tmp_path: Path) -> None:
    outside = write_files(tmp_path / "outside", {"real.txt": "real", "sub/inner.txt": "inner"})
    source = write_files(tmp_path / "d", {"a.txt": "a"})
    (source / "link.txt").symlink_to(outside / "real.txt")
    (source / "linked-dir").symlink_to(outside / "sub")

    bundle = api.add(ctx, "d", source)

    assert sorted(f.path for f in bundle.files) == ["a.txt", "link.txt", "linked-dir/inner.txt"]


def test_missing_path_and_broken_top_level_symlink(
    ctx: str, tmp_path: Path, assay_home: Path
) -> None:
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    before = Unchanged(assay_home)

    with pytest.raises(PathNotFound, match="path does not exist"):
        api.add(ctx, "x", tmp_path / "absent")
    with pytest.raises(PathNotFound, match="path does not exist"):
        api.add(ctx, "x", tmp_path / "dangling")

    before.check()


# -- unreadable files: only a non-root user can be refused ----------------------------------
@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A 0777 folder outside pytest's 0700 tmp_path, so user ``nobody`` can work in it."""
    folder = Path(tempfile.mkdtemp(prefix="assay-nobody-", dir="/tmp"))
    folder.chmod(0o777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


# The interpreter lives under /root (0700), so the child cannot simply exec as nobody: it starts
# as root, loads every module it will need (by using Assay once in a scratch home), and only then
# drops to uid/gid 65534 and works in the shared home.
_AS_NOBODY = """
import json, os, sys
from pathlib import Path
from assay import api
from assay.bundles.workspace import close_workspaces
from assay.catalog.engine import create_catalog_engine
from assay.core.errors import AssayError

shared, home, catalog = Path(sys.argv[1]), sys.argv[2], os.environ.get("ASSAY_CATALOG_URL")
os.environ.pop("ASSAY_CATALOG_URL", None)
os.environ["ASSAY_HOME"] = str(shared / "warm-up")
api.context("w")
(shared / "warm.txt").write_text("w")
api.cat("w", uuid=api.add("w", "w", shared / "warm.txt").uuid)
if catalog:
    create_catalog_engine(catalog).dispose()
    os.environ["ASSAY_CATALOG_URL"] = catalog
close_workspaces()

os.setgid(65534)
os.setuid(65534)
os.environ["ASSAY_HOME"] = home
results = {}
for name in sys.argv[3:]:
    try:
        api.add("work", name, shared / name)
        results[name] = "added"
    except AssayError as exc:
        results[name] = [type(exc).__name__, str(exc)]
print(json.dumps(results))
"""


_ATTEMPTS = ("secret-file", "secret-dir", "alone.txt", "fine")


def test_unreadable_entries_as_a_non_root_user(
    assay_home: Path, shared_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = shared_dir / "home"
    monkeypatch.setenv("ASSAY_HOME", str(home))
    close_workspaces()
    api.context(CTX)
    write_files(shared_dir / "fine", {"ok.txt": "readable"})
    write_files(shared_dir / "secret-file", {"ok.txt": "ok", "secret.txt": "no"})
    (shared_dir / "secret-file" / "secret.txt").chmod(0o000)
    write_files(shared_dir / "secret-dir", {"ok.txt": "ok", "locked/inner.txt": "no"})
    (shared_dir / "secret-dir" / "locked").chmod(0o000)
    write_files(shared_dir, {"alone.txt": "no"})
    (shared_dir / "alone.txt").chmod(0o000)
    before = Unchanged(home)
    close_workspaces()
    subprocess.run(["chmod", "-R", "a+rwX", str(home)], check=True)

    result = subprocess.run(
        [PYTHON, "-c", python_code(_AS_NOBODY), str(shared_dir), str(home), *_ATTEMPTS],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=shared_dir,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout)
    secret = shared_dir / "secret-file" / "secret.txt"
    assert results["secret-file"] == ["UnreadableFile", f"cannot read {secret}: permission denied"]
    locked = shared_dir / "secret-dir" / "locked"
    assert results["secret-dir"][0] == "UnreadableFile"
    assert results["secret-dir"][1] == f"cannot read directory {locked}: Permission denied"
    alone = shared_dir / "alone.txt"
    assert results["alone.txt"] == ["UnreadableFile", f"cannot read {alone}: permission denied"]
    assert results["fine"] == "added"  # the setup really lets nobody add
    # Only the control bundle was added; the refused ones left nothing behind.
    rows = catalog_counts()
    assert rows["bundles"] == before.rows["bundles"] + 1
    assert rows["bundle_files"] == before.rows["bundle_files"] + 1
    assert set(blob_files(home)) == before.blobs | {hash_bytes(b"readable")}
    assert temp_files(home) == []


# -- a full disk (a file-size limit makes writes fail with EFBIG) ----------------------------
_ADD = """
import json, sys
from assay import api
from assay.core.errors import AssayError
try:
    api.add("work", "huge", sys.argv[1])
    print(json.dumps("added"))
except AssayError as exc:
    print(json.dumps([type(exc).__name__, str(exc)]))
"""


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))


def _add_with_full_disk(source: Path) -> list[str]:
    result = subprocess.run(
        [PYTHON, "-c", python_code(_ADD), str(source)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limit_file_size,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    outcome: list[str] = json.loads(result.stdout)
    return outcome


@pytest.mark.parametrize(
    "size",
    [
        pytest.param(4 << 20, id="4MiB-small-file-path"),
        # The large-file path copies with sendfile, whose error names the source even when
        # the write failed: a full disk must still be StorageFull, not "cannot read source".
        pytest.param(12 << 20, id="12MiB-large-file-path"),
    ],
)
def test_disk_full_during_add(ctx: str, tmp_path: Path, assay_home: Path, size: int) -> None:
    source = tmp_path / "huge.bin"
    source.write_bytes(os.urandom(size))
    before = Unchanged(assay_home)

    kind, message = _add_with_full_disk(source)

    assert kind == "StorageFull", message
    assert message.startswith("no space left while")
    assert "nothing was added" in message
    assert "\n" not in message
    before.check()  # no row, no partial blob, no temp file
    assert api.get(ctx, "huge") is None
