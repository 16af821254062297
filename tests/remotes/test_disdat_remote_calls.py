"""Disdat 1.2's remote keywords on the API and on Bundle: push(delocalize=True), rmr()."""

from __future__ import annotations

from pathlib import Path

from remote_helpers import Remote, remote_keys

from assay import api
from helpers import write_files


def test_push_with_delocalize_frees_the_local_data(
    sqlite_home: Path, remote: Remote, tmp_path: Path
) -> None:
    api.context("lab")
    api.remote("lab", "lab", remote.url)
    api.add("lab", "scans", write_files(tmp_path / "scans", {"a.csv": "1\n"}))
    api.commit("lab", "scans")

    api.push("lab", "scans", delocalize=True)

    bundle = api.get("lab", "scans")
    assert bundle is not None and not bundle.localized
    api.localize("lab", "scans")
    assert Path(bundle.data[0]).read_text() == "1\n"


def test_bundle_push_delocalize_and_rmr(sqlite_home: Path, remote: Remote, tmp_path: Path) -> None:
    api.context("lab")
    api.remote("lab", "lab", remote.url)
    bundle = api.Bundle("lab", name="table", data={"rows": 2}).commit()

    assert bundle.push(delocalize=True) is bundle
    assert any(bundle.uuid in key for key in remote_keys(remote, ""))

    removal = bundle.rmr()

    assert [entry.uuid for entry in removal.removed] == [bundle.uuid]
    assert api.get("lab", "table") is not None  # only the remote copy went
    assert not any(bundle.uuid in key for key in remote_keys(remote, ""))
