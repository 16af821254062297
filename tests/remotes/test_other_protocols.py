"""Any installed fsspec protocol works as a remote; here ``memory://`` (in-process) stands in
for gs:// and az://, which have no server here. It has no conditional writes, so it runs the
documented safe path: new names only, check then write."""

from __future__ import annotations

import uuid
from pathlib import Path

from remote_helpers import Machine

from assay import api
from assay.store.remote import RemoteStore
from helpers import write_files


def test_push_and_pull_through_a_generic_fsspec_remote(
    machines: tuple[Machine, Machine], tmp_path: Path
) -> None:
    a, b = machines
    url = f"memory://assay-{uuid.uuid4().hex[:8]}/remote"
    assert RemoteStore(url).conditional_writes == "new-names-only"
    with a.active():
        api.context("lab")
        api.remote("lab", "lab", url)
        write_files(tmp_path / "d", {"x.txt": "x", "sub/y.txt": "y"})
        bundle = api.add("lab", "d", tmp_path / "d")
        api.commit("lab", "d")
        assert api.push("lab").blobs_uploaded == 2
        assert api.push("lab").pushed == ()
    with b.active():
        api.context("lab")
        api.remote("lab", "lab", url)
        assert api.pull("lab", localize=True).pulled == (bundle.uuid,)
        assert sorted(Path(p).read_text() for p in api.cat("lab", "d")) == ["x", "y"]
    store = RemoteStore(url)
    assert store.write_new("contexts/lab/bundles/z.json", b"1") is True
    assert store.write_new("contexts/lab/bundles/z.json", b"2") is False
    assert store.read("contexts/lab/bundles/z.json") == b"1"


def test_packs_through_a_generic_fsspec_remote(
    machines: tuple[Machine, Machine], tmp_path: Path
) -> None:
    a, b = machines
    url = f"memory://assay-{uuid.uuid4().hex[:8]}/remote"
    files = {f"f{i:03}.txt": f"small file {i}\n" * 20 for i in range(40)}
    with a.active():
        api.context("lab")
        api.remote("lab", "lab", url)
        write_files(tmp_path / "p", files)
        bundle = api.add("lab", "p", tmp_path / "p")
        api.commit("lab", "p")
        assert api.push("lab").blobs_uploaded == 40
    listed = RemoteStore(url).list_files("packs")
    assert len(listed) == 2 and {n.rsplit(".", 1)[1] for n in listed} == {"pack", "idx"}
    with b.active():
        api.context("lab")
        api.remote("lab", "lab", url)
        assert api.pull("lab", localize=True).pulled == (bundle.uuid,)  # by cat_file ranges
        assert {Path(p).name: Path(p).read_text() for p in api.cat("lab", "p")} == files
