"""``rm --remote``: only what is named goes, and never a blob another remote record uses."""

from __future__ import annotations

from pathlib import Path

import pytest
from remote_helpers import Machine, Remote, remote_keys

from assay import api
from assay.core.errors import BundleNotFound, InvalidInput, UnpushedBundles
from helpers import write_files


def _push(context: str, name: str, root: Path, files: dict[str, str]) -> str:
    write_files(root, files)
    bundle = api.add(context, name, root)
    api.commit(context, name)
    api.push(context, name)
    return bundle.uuid


def test_removes_only_the_newest_version_by_default(
    sqlite_home: Path, remote: Remote, tmp_path: Path
) -> None:
    api.context("lab")
    api.remote("lab", "lab", remote.url)
    old = _push("lab", "series", tmp_path / "v1", {"f.txt": "1", "same.txt": "s"})
    new = _push("lab", "series", tmp_path / "v2", {"f.txt": "2", "same.txt": "s"})
    other = _push("lab", "other", tmp_path / "o", {"o.txt": "o"})

    removal = api.rm_remote("lab", "series")

    assert [e.uuid for e in removal.removed] == [new]
    assert (removal.blobs_deleted, removal.blobs_kept) == (1, 1)  # "2" goes, "s" is shared
    records = remote_keys(remote, "contexts/lab/bundles")
    assert records == sorted(f"contexts/lab/bundles/{u}.json" for u in (old, other))
    assert len(remote_keys(remote, "objects")) == 3
    assert {x.uuid for x in api.search("lab")} == {old, new, other}  # local copies untouched
    assert api.push("lab", "series").pushed == (new,)  # and it can be pushed again


def test_rm_all_versions_and_by_uuid(sqlite_home: Path, remote: Remote, tmp_path: Path) -> None:
    api.context("lab")
    api.remote("lab", "lab", remote.url)
    _push("lab", "series", tmp_path / "v1", {"f.txt": "1"})
    _push("lab", "series", tmp_path / "v2", {"f.txt": "2"})
    keep = _push("lab", "keep", tmp_path / "k", {"k.txt": "k"})
    assert len(api.rm_remote("lab", "series", rm_all=True).removed) == 2
    assert remote_keys(remote, "contexts/lab/bundles") == [f"contexts/lab/bundles/{keep}.json"]
    api.rm_remote("lab", uuid=keep)
    assert remote_keys(remote, "contexts/lab/bundles") == []
    assert remote_keys(remote, "objects") == []
    with pytest.raises(BundleNotFound):
        api.rm_remote("lab", "keep")
    with pytest.raises(InvalidInput, match="name the bundle"):
        api.rm_remote("lab")


def test_blobs_used_by_another_context_on_the_remote_are_kept(
    sqlite_home: Path, remote: Remote, tmp_path: Path
) -> None:
    api.context("one")
    api.context("two")
    api.remote("one", "one", remote.url)
    api.remote("two", "two", remote.url)
    _push("one", "a", tmp_path / "a", {"shared.txt": "shared", "mine.txt": "mine"})
    _push("two", "b", tmp_path / "b", {"shared.txt": "shared"})
    removal = api.rm_remote("one", "a")
    assert (removal.blobs_deleted, removal.blobs_kept) == (1, 1)
    assert len(remote_keys(remote, "objects")) == 1


def test_the_other_machine_stops_seeing_a_removed_bundle(
    machines: tuple[Machine, Machine], remote: Remote, tmp_path: Path
) -> None:
    a, b = machines
    with a.active():
        api.context("lab")
        api.remote("lab", "lab", remote.url)
        gone = _push("lab", "gone", tmp_path / "g", {"g.txt": "g"})
        stays = _push("lab", "stays", tmp_path / "s", {"s.txt": "s"})
    with b.active():
        api.context("lab")
        api.remote("lab", "lab", remote.url)
        api.pull("lab", localize=True)
    with a.active():
        api.rm_remote("lab", "gone")
    with b.active():
        assert api.pull("lab").already_here == (stays,)
        # B still has its localized copy, which now counts as unpushed.
        with pytest.raises(UnpushedBundles, match=f"gone@{gone[:8]}"):
            api.delete_context("lab")


def test_refuses_to_remove_the_only_copy_of_a_bundle_here_but_not_localized(
    sqlite_home: Path, remote: Remote, tmp_path: Path
) -> None:
    api.context("lab")
    api.remote("lab", "lab", remote.url)
    _push("lab", "b", tmp_path / "b", {"f.txt": "only copy"})
    api.delocalize("lab", "b")
    keys = remote_keys(remote)
    with pytest.raises(UnpushedBundles, match="holds the only copy"):
        api.rm_remote("lab", "b")
    assert remote_keys(remote) == keys
    api.localize("lab", "b")
    api.rm_remote("lab", "b")
    assert Path(api.cat("lab", "b")[0]).read_text() == "only copy"
