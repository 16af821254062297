"""Datafile and Dataset: real files in tmp_path, Octue metadata, content hash, primitives."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.core import hashing
from assay.core.datafile import Datafile
from assay.core.dataset import Dataset
from assay.core.errors import (
    FileNotInFilterSet,
    InvalidInput,
    InvalidLabel,
    InvalidTag,
    MultipleFilesFound,
    PathNotFound,
)


def _write(path: Path, content: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return path


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# == Datafile ==================================================================================


def test_local_datafile_fields(tmp_path: Path) -> None:
    target = _write(tmp_path / "data" / "wind.csv", "a,b\n1,2\n")
    datafile = Datafile(path=target, tags={"year": 2021}, labels=["raw"], timestamp=12)
    assert datafile.path == str(target)
    assert datafile.name == "wind.csv"
    assert datafile.extension == "csv"
    assert datafile.local_path == str(target)
    assert datafile.is_url is False
    assert datafile.size == 8
    assert datafile.hash_value == hashing.hash_file(target)
    assert datafile.timestamp == 12.0
    assert dict(datafile.tags) == {"year": 2021}
    assert datafile.labels == {"raw"}
    assert datafile.relative_path is None
    assert repr(datafile) == "<Datafile('wind.csv')>"


def test_remote_datafile_fields() -> None:
    datafile = Datafile(path="gs://bucket/dir/file.parquet")
    assert (datafile.name, datafile.extension, datafile.local_path) == (
        "file.parquet",
        "parquet",
        None,
    )
    assert datafile.is_url
    assert datafile.hash_value is None and datafile.size is None
    given_hash = "ab" * 32
    known = Datafile(path="gs://bucket/dir/file.parquet", hash_value=given_hash, size=3)
    assert (known.hash_value, known.size) == (given_hash, 3)


def test_file_url_is_local(tmp_path: Path) -> None:
    target = _write(tmp_path / "x y.txt", "hi")
    datafile = Datafile(path=target.as_uri())
    assert datafile.is_url
    assert datafile.local_path == str(target)
    assert datafile.size == 2
    with datafile.open() as handle:
        assert handle.read() == "hi"


def test_open_writes_creating_parents_then_reads(tmp_path: Path) -> None:
    datafile = Datafile(path=tmp_path / "new" / "deep" / "out.txt", labels=["processed"])
    with datafile.open("w") as handle:
        handle.write("first")
    assert (tmp_path / "new" / "deep" / "out.txt").read_text() == "first"
    with datafile.open("r") as handle:
        assert handle.read() == "first"
    with datafile.open("rb") as handle:
        assert handle.read() == b"first"
    with datafile.open("a") as handle:
        handle.write("+more")
    assert datafile.size == len("first+more")


def test_rewriting_refreshes_the_hash(tmp_path: Path) -> None:
    datafile = Datafile(path=tmp_path / "f.txt")
    with datafile.open("w") as handle:
        handle.write("one")
    first = datafile.hash_value
    with datafile.open("w") as handle:
        handle.write("two!")
    assert datafile.hash_value != first
    assert datafile.hash_value == hashing.hash_bytes(b"two!")
    assert datafile.size == 4


def test_failed_write_keeps_the_old_content(tmp_path: Path) -> None:
    target = _write(tmp_path / "keep.txt", "precious")
    datafile = Datafile(path=target)
    with pytest.raises(RuntimeError), datafile.open("w") as handle:
        handle.write("half")
        raise RuntimeError("boom")
    assert target.read_text() == "precious"
    assert _listing(tmp_path) == ["keep.txt"]  # no temporary file left behind


def test_open_missing_or_remote(tmp_path: Path) -> None:
    missing = Datafile(path=tmp_path / "nope.txt")
    with pytest.raises(PathNotFound, match=r"datafile 'nope.txt': no file at .*nope.txt"):
        missing.open().__enter__()
    with pytest.raises(InvalidInput, match="is remote; download it"):
        Datafile(path="s3://b/k.txt").open().__enter__()
    with pytest.raises(PathNotFound):
        _ = Datafile(path=tmp_path / "nope.txt").hash_value
    assert _listing(tmp_path) == []


def test_caller_data_is_copied_not_shared() -> None:
    tags: dict[str, Any] = {"meta": {"source": "lidar"}, "year": 2020}
    labels = {"raw"}
    datafile = Datafile(path="s3://b/a.csv", tags=tags, labels=labels)
    tags["year"] = 1999
    tags["meta"]["source"] = "changed"
    labels.add("sneaky")
    assert datafile.tags["year"] == 2020
    assert datafile.tags["meta"] == {"source": "lidar"}
    assert datafile.labels == {"raw"}
    assert tags == {"meta": {"source": "changed"}, "year": 1999}  # ours, untouched by Datafile
    with pytest.raises(TypeError):
        datafile.tags["year"] = 3  # type: ignore[index]
    with pytest.raises(AttributeError):
        datafile.labels.add("x")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"tags": {"Bad Key": 1}}, InvalidTag, r"invalid tag key 'Bad Key'"),
        ({"tags": {"ok": object()}}, InvalidTag, r"tag 'ok': value .* is not JSON"),
        ({"tags": ["a"]}, InvalidTag, r"tags must be a mapping"),
        ({"labels": ["Not-OK"]}, InvalidLabel, r"invalid label 'Not-OK'"),
        ({"labels": 3}, InvalidLabel, r"labels must be a list or set of strings"),
        ({"labels": {"a": 1}}, InvalidLabel, r"not a mapping"),
        ({"timestamp": "yesterday"}, InvalidInput, r"invalid timestamp 'yesterday'"),
        ({"timestamp": True}, InvalidInput, r"invalid timestamp True"),
        ({"size": -1}, InvalidInput, r"invalid size -1"),
        ({"hash_value": 5}, InvalidInput, r"invalid hash_value 5"),
        ({"relative_path": "../up.csv"}, InvalidInput, r"invalid relative path '../up.csv'"),
        ({"relative_path": "/abs.csv"}, InvalidInput, r"invalid relative path '/abs.csv'"),
        ({"path": ""}, InvalidInput, r"invalid datafile path ''"),
        ({"path": 7}, InvalidInput, r"invalid datafile path 7"),
        ({"path": "s3://b/dir/"}, InvalidInput, r"it names a directory"),
    ],
)
def test_bad_datafile_input(
    tmp_path: Path, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    arguments = {"path": str(tmp_path / "f.csv"), **kwargs}
    with pytest.raises(error, match=message):
        Datafile(**arguments)
    assert _listing(tmp_path) == []


def test_datafile_primitive_round_trip(tmp_path: Path) -> None:
    target = _write(tmp_path / "a.csv", "x")
    datafile = Datafile(path=target, tags={"k": [1, {"n": None}]}, labels=["b", "a"], timestamp=1.5)
    primitive = datafile.to_primitive()
    assert primitive == {
        "path": str(target),
        "tags": {"k": [1, {"n": None}]},
        "labels": ["a", "b"],
        "timestamp": 1.5,
        "hash_value": hashing.hash_file(target),
        "size": 1,
    }
    again = Datafile.from_primitive(json.loads(json.dumps(primitive)))
    assert again == datafile
    assert again.to_primitive() == primitive
    # A file not written yet serialises without content fields.
    assert Datafile(path=tmp_path / "later.csv").to_primitive()["hash_value"] is None


def test_datafile_from_octue_primitive() -> None:
    octue = {
        "id": "7d9a1c0e-0000-0000-0000-000000000000",
        "name": "file.csv",
        "cloud_path": "gs://bucket/ds/file.csv",
        "labels": "raw wind",
        "tags": {"year": 2020},
        "timestamp": None,
        "hash_value": "yPtNAw==",
        "sdk_version": "0.50.0",
    }
    datafile = Datafile.from_primitive(octue)
    assert datafile.path == "gs://bucket/ds/file.csv"
    assert datafile.labels == {"raw", "wind"}
    assert datafile.hash_value == "yPtNAw=="


def test_bad_datafile_primitive() -> None:
    with pytest.raises(InvalidInput, match=r"datafile: no 'path'"):
        Datafile.from_primitive({"tags": {}})
    with pytest.raises(InvalidInput, match=r"datafile: expected an object, got 'a.csv'"):
        Datafile.from_primitive("a.csv")  # type: ignore[arg-type]


def test_replace_and_equality() -> None:
    datafile = Datafile(path="s3://b/a.csv", tags={"k": 1}, labels=["x"], hash_value="00" * 32)
    changed = datafile.replace(labels=["y"])
    assert changed.labels == {"y"} and datafile.labels == {"x"}
    assert changed.hash_value == datafile.hash_value
    assert datafile.replace(path="s3://b/other.csv").hash_value is None
    assert datafile == Datafile(path="s3://b/a.csv", tags={"k": 1}, labels=["x"])
    assert datafile != changed
    assert hash(datafile) == hash(changed)
    with pytest.raises(InvalidInput, match=r"unknown field\(s\) \['colour'\]"):
        datafile.replace(colour="red")
    with pytest.raises(InvalidTag):
        datafile.replace(tags={"BAD": 1})


# == Dataset ===================================================================================


@pytest.fixture
def dataset_dir(tmp_path: Path) -> Path:
    root = tmp_path / "wind-ds"
    _write(root / "a.csv", "1,2\n")
    _write(root / "sub" / "b.csv", "3,4\n")
    _write(root / "sub" / "deeper" / "c.txt", "notes")
    _write(root / ".assay", "{}")
    return root


def test_dataset_from_directory(dataset_dir: Path) -> None:
    dataset = Dataset(path=dataset_dir)
    assert dataset.name == "wind-ds"
    assert dataset.path == str(dataset_dir)
    assert len(dataset) == 3
    assert sorted(f.relative_path or "" for f in dataset) == [
        "a.csv",
        "sub/b.csv",
        "sub/deeper/c.txt",
    ]
    assert all(f.local_path is not None and os.path.isfile(f.local_path) for f in dataset)
    assert dataset.files.one(name="c.txt").path == str(dataset_dir / "sub" / "deeper" / "c.txt")
    assert repr(dataset) == "<Dataset('wind-ds', 3 files)>"


def _octue_document(shape: str) -> dict[str, Any]:
    dataset = {
        "id": "1b9b2d9a-0000-0000-0000-000000000000",
        "name": "from-octue",
        "tags": {"site": "north"},
        "labels": ["met"],
        "files": [
            {"path": "sub/b.csv", "labels": ["clean"], "tags": {"year": 2021}},
            {"name": "c.txt", "labels": ["notes"], "timestamp": 5},
            "gs://bucket/whatever/a.csv",
            {"path": "not-here.csv", "labels": ["ghost"]},
        ],
    }
    if shape == "dataset":
        return {"dataset": dataset}
    if shape == "datasets":
        return {"datasets": {"only": dataset}}
    if shape == "datasets-list":
        return {"datasets": [{"name": "other"}, {**dataset, "name": "wind-ds"}]}
    return dataset


@pytest.mark.parametrize("shape", ["dataset", "datasets", "datasets-list", "bare"])
def test_octue_metadata_is_applied(dataset_dir: Path, shape: str) -> None:
    (dataset_dir / ".octue").write_text(json.dumps(_octue_document(shape)))
    dataset = Dataset(path=dataset_dir)
    assert len(dataset) == 3  # neither .octue nor .assay is a file of the dataset
    assert dataset.name == ("wind-ds" if shape == "datasets-list" else "from-octue")
    assert dict(dataset.tags) == {"site": "north"}
    assert dataset.labels == {"met"}
    assert dataset.get_file_by_label("clean").relative_path == "sub/b.csv"
    assert dict(dataset.files.one(name="b.csv").tags) == {"year": 2021}
    assert dataset.get_file_by_label("notes").timestamp == 5.0
    assert dataset.files.one(name="a.csv").labels == frozenset()


def test_octue_per_datafile_metadata(dataset_dir: Path) -> None:
    (dataset_dir / ".octue").write_text(
        json.dumps({"datafiles": {"a.csv": {"labels": ["first"], "tags": {"n": 1}}}})
    )
    dataset = Dataset(path=dataset_dir, name="given", labels=["mine"])
    assert dataset.name == "given" and dataset.labels == {"mine"}
    assert dataset.get_file_by_label("first").relative_path == "a.csv"


def test_octue_metadata_in_subdirectories(dataset_dir: Path) -> None:
    # Octue writes each datafile's record into a .octue file beside it, keyed by file name.
    (dataset_dir / "sub" / ".octue").write_text(
        json.dumps({"datafiles": {"b.csv": {"labels": ["nested"], "tags": {"n": 2}}}})
    )
    (dataset_dir / ".octue").write_text(
        json.dumps({"datafiles": {"b.csv": {"labels": ["wrong-level"]}}, "files": []})
    )
    dataset = Dataset(path=dataset_dir)
    assert len(dataset) == 3
    nested = dataset.get_file_by_label("nested")
    assert nested.relative_path == "sub/b.csv" and dict(nested.tags) == {"n": 2}
    assert dataset.files.filter(labels__contains="wrong-level") == dataset.files.filter(name="x")
    (dataset_dir / "sub" / ".octue").write_text('{"datafiles": []}')
    with pytest.raises(InvalidInput, match=r"sub.\.octue: 'datafiles' must be an object"):
        Dataset(path=dataset_dir)


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        ("{not json", InvalidInput, r"\.octue: not readable JSON"),
        ("[1, 2]", InvalidInput, r"\.octue: expected a JSON object, got list"),
        ('{"dataset": 3}', InvalidInput, r"the dataset entry must be an object"),
        ('{"files": {"a": 1}}', InvalidInput, r"'files' must be a list"),
        ('{"datasets": 3}', InvalidInput, r"'datasets' must be an object or a list"),
        (
            '{"datasets": {"x": {}, "y": {}}}',
            InvalidInput,
            r"2 datasets are described and none is named 'wind-ds'",
        ),
        (
            '{"files": [{"path": "a.csv", "tags": {"Bad": 1}}]}',
            InvalidTag,
            r"dataset metadata for .*a\.csv: invalid tag key 'Bad'",
        ),
        ('{"labels": ["UPPER"]}', InvalidLabel, r"invalid label 'UPPER'"),
    ],
)
def test_bad_octue_metadata(
    dataset_dir: Path, content: str, error: type[Exception], message: str
) -> None:
    (dataset_dir / ".octue").write_text(content)
    before = _listing(dataset_dir)
    with pytest.raises(error, match=message):
        Dataset(path=dataset_dir)
    assert _listing(dataset_dir) == before


def test_dataset_directory_problems(tmp_path: Path) -> None:
    with pytest.raises(PathNotFound, match=r"dataset directory not found: .*missing"):
        Dataset(path=tmp_path / "missing")
    _write(tmp_path / "file.csv", "x")
    with pytest.raises(InvalidInput, match=r"is a file; give its directory"):
        Dataset(path=tmp_path / "file.csv")
    with pytest.raises(InvalidInput, match=r"invalid dataset path 3"):
        Dataset(path=3)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match=r"dataset files must be Datafiles, dicts or paths"):
        Dataset(files=[3])  # type: ignore[list-item]
    assert _listing(tmp_path) == ["file.csv"]


def test_dataset_from_files_gets_relative_paths() -> None:
    dataset = Dataset(
        path="s3://bucket/ds",
        files=[
            Datafile(path="s3://bucket/ds/x/a.csv"),
            {"path": "s3://elsewhere/b.csv", "labels": ["b"]},
            Datafile(path="s3://bucket/other/c.csv", relative_path="kept/c.csv"),
        ],
    )
    assert sorted(f.relative_path or "" for f in dataset) == ["b.csv", "kept/c.csv", "x/a.csv"]
    assert dataset.name == "ds"
    assert Dataset(path="s3://bucket/ds").files == Dataset().files  # remote, not listed


def test_duplicate_relative_paths_are_refused() -> None:
    with pytest.raises(InvalidInput, match=r"two files share the relative path 'a.csv'"):
        Dataset(files=[Datafile(path="s3://one/a.csv"), Datafile(path="s3://two/a.csv")])


def test_dataset_does_not_change_callers_input() -> None:
    files = [Datafile(path="s3://b/a.csv")]
    tags: dict[str, Any] = {"k": {"deep": 1}}
    labels = ["x"]
    dataset = Dataset(files=files, tags=tags, labels=labels)
    tags["k"]["deep"] = 2
    labels.append("y")
    files.append(Datafile(path="s3://b/z.csv"))
    assert dict(dataset.tags) == {"k": {"deep": 1}}
    assert dataset.labels == {"x"}
    assert len(dataset) == 1
    assert files[0].relative_path is None  # the caller's Datafile was not changed in place


def test_get_file_by_label_errors() -> None:
    dataset = Dataset(
        name="ds",
        files=[
            Datafile(path="s3://b/a.csv", labels=["wind"]),
            Datafile(path="s3://b/b.csv", labels=["wind"]),
        ],
    )
    with pytest.raises(FileNotInFilterSet) as none:
        dataset.get_file_by_label("solar")
    assert (
        str(none.value) == "dataset 'ds': no item matches labels__contains='solar' among 2 item(s)"
    )
    with pytest.raises(
        MultipleFilesFound, match=r"^dataset 'ds': 2 items match labels__contains='wind'"
    ):
        dataset.get_file_by_label("wind")


# -- content hash ------------------------------------------------------------------------------


def test_content_hash_on_real_files(tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    _write(first / "a.csv", "A")
    _write(first / "sub" / "b.csv", "B")
    _write(second / "sub" / "b.csv", "B")  # written in the other order
    _write(second / "a.csv", "A")
    assert Dataset(path=first).content_hash == Dataset(path=second, name="renamed").content_hash
    expected = hashing.tree_hash(
        [("a.csv", hashing.hash_bytes(b"A"), 1), ("sub/b.csv", hashing.hash_bytes(b"B"), 1)],
        {"tags": {}, "labels": []},
    )
    assert Dataset(path=first).content_hash == expected
    _write(second / "a.csv", "changed")
    assert Dataset(path=first).content_hash != Dataset(path=second).content_hash


def test_content_hash_counts_tags_labels_and_paths() -> None:
    files = [Datafile(path="s3://b/a.csv", hash_value="11" * 32, size=1)]
    base = Dataset(files=files).content_hash
    assert Dataset(files=files, tags={"k": 1}).content_hash != base
    assert Dataset(files=files, labels=["x"]).content_hash != base
    moved = [files[0].replace(relative_path="sub/a.csv")]
    assert Dataset(files=moved).content_hash != base


def test_content_hash_needs_known_content() -> None:
    dataset = Dataset(name="remote", files=[Datafile(path="s3://b/a.csv")])
    with pytest.raises(
        InvalidInput, match=r"dataset 'remote': cannot hash remote file s3://b/a.csv"
    ):
        _ = dataset.content_hash


_entries = st.dictionaries(
    st.from_regex(r"[a-z]{1,6}(/[a-z]{1,6}){0,2}\.csv", fullmatch=True),
    st.tuples(st.binary(max_size=16), st.integers(0, 10**9)),
    max_size=8,
)


@settings(max_examples=100, deadline=None)
@given(entries=_entries, data=st.data())
def test_content_hash_is_order_independent(
    entries: dict[str, tuple[bytes, int]], data: st.DataObject
) -> None:
    files = [
        Datafile(
            path=f"s3://bucket/{relative}",
            relative_path=relative,
            hash_value=hashing.hash_bytes(content),
            size=size,
        )
        for relative, (content, size) in entries.items()
    ]
    labels = ["b", "a", "c"]
    shuffled_files = data.draw(st.permutations(files))
    shuffled_labels = data.draw(st.permutations(labels))
    one = Dataset(files=files, tags={"x": 1, "y": [1, 2]}, labels=labels)
    two = Dataset(files=shuffled_files, tags={"y": [1, 2], "x": 1}, labels=shuffled_labels)
    assert one.content_hash == two.content_hash
    assert one == two


# -- primitive form ----------------------------------------------------------------------------


def test_dataset_primitive_round_trip(dataset_dir: Path) -> None:
    dataset = Dataset(path=dataset_dir, tags={"k": "v"}, labels=["x"])
    primitive = dataset.to_primitive()
    assert [f["relative_path"] for f in primitive["files"]] == [
        "a.csv",
        "sub/b.csv",
        "sub/deeper/c.txt",
    ]
    again = Dataset.from_primitive(json.loads(json.dumps(primitive)))
    assert again == dataset
    assert again.content_hash == dataset.content_hash
    assert again.to_primitive() == primitive


def test_dataset_from_octue_primitive_and_base_dir(tmp_path: Path) -> None:
    _write(tmp_path / "ds" / "a.csv", "A")
    octue = {
        "id": "x",
        "name": "octue-ds",
        "path": "ds",
        "labels": "one two",
        "files": ["ds/a.csv", {"cloud_path": "gs://b/ds/z.csv", "tags": {"n": 1}}],
    }
    dataset = Dataset.from_primitive(octue, base_dir=str(tmp_path))
    assert dataset.path == str(tmp_path / "ds")
    assert dataset.labels == {"one", "two"}
    assert dataset.files.one(name="a.csv").relative_path == "a.csv"
    assert dataset.files.one(name="a.csv").size == 1
    assert dataset.files.one(name="z.csv").relative_path == "z.csv"
    # Without "files", a local path is read from disk.
    assert len(Dataset.from_primitive({"path": "ds"}, base_dir=str(tmp_path))) == 1


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        ([1], InvalidInput, r"dataset: expected an object"),
        ({"path": 3}, InvalidInput, r"dataset: 'path' must be a string"),
        ({"files": "a.csv"}, InvalidInput, r"dataset: 'files' must be a list"),
        ({"files": [3]}, InvalidInput, r"files\[0\]: expected a file object or path, got 3"),
        (
            {"files": [{"path": "s3://b/a", "tags": {"X": 1}}]},
            InvalidTag,
            r"files\[0\]: invalid tag key",
        ),
        ({"files": [], "tags": {"X": 1}}, InvalidTag, r"invalid tag key 'X'"),
        ({"files": [], "name": 5}, InvalidInput, r"invalid dataset name 5"),
    ],
)
def test_bad_dataset_primitive(data: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        Dataset.from_primitive(data)
