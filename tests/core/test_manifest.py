"""Manifest and parse_reference: reference kinds, copying, JSON round trip, clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.core.datafile import Datafile
from assay.core.dataset import Dataset
from assay.core.errors import (
    DatasetNotInManifest,
    InvalidManifest,
    LocalFilesNotAllowed,
    PathNotFound,
)
from assay.core.manifest import Manifest, Reference, parse_reference

UUID = "8f0c2d5e-3b1a-4c6d-9e7f-0a1b2c3d4e5f"


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# -- parse_reference ---------------------------------------------------------------------------


def test_parse_catalog_references() -> None:
    latest = parse_reference("assay://research/wind-speed")
    assert latest == Reference(kind="catalog", context="research", name="wind-speed")
    assert latest.uuid is None
    assert latest.uri == "assay://research/wind-speed"
    pinned = parse_reference(f"assay://research/wind-speed@{UUID.upper().replace('-', '')}")
    assert pinned.uuid == UUID  # normalised
    assert pinned.uri == f"assay://research/wind-speed@{UUID}"
    assert not pinned.uses_local_files


def test_parse_local_url_and_dataset_references(tmp_path: Path) -> None:
    local = parse_reference("data/my_dataset")
    assert (local.kind, local.path, local.uri) == ("local", "data/my_dataset", "data/my_dataset")
    assert local.uses_local_files
    assert parse_reference(tmp_path).path == str(tmp_path)
    for url, protocol in [
        ("s3://bucket/ds", "s3"),
        ("gs://bucket/ds", "gs"),
        ("az://container/ds", "az"),
        ("file:///tmp/ds", "file"),
        ("memory://bucket/ds", "memory"),
        ("S3://bucket/ds", "s3"),
    ]:
        reference = parse_reference(url)
        assert (reference.kind, reference.url, reference.protocol) == ("url", url, protocol)
        assert not reference.uses_local_files
    dataset = Dataset(files=[Datafile(path="s3://b/a.csv")])
    by_object = parse_reference(dataset)
    assert by_object.kind == "dataset" and by_object.dataset is dataset and by_object.uri is None
    assert not by_object.uses_local_files
    local_files = Dataset(files=[Datafile(path=tmp_path / "a.csv")])
    assert parse_reference(local_files).uses_local_files
    assert parse_reference(local) is local


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (3, "expected a string reference or a dataset object, got 3"),
        (None, "expected a string reference or a dataset object, got None"),
        ("", "empty dataset reference"),
        ("   ", "empty dataset reference"),
        ("assay://research", "invalid catalog reference 'assay://research': write it as"),
        ("assay:///name", "invalid catalog reference 'assay:///name': write it as"),
        ("assay://ctx/name@", "nothing after '@'"),
        ("assay://ctx/name@not-a-uuid", "'not-a-uuid' is not a uuid"),
        (
            "assay://ctx/a/b",
            "invalid catalog reference 'assay://ctx/a/b': invalid bundle name 'a/b'",
        ),
        ("assay://../name", "invalid context name '..'"),
        ("ftpx://host/ds", "unsupported protocol 'ftpx' in 'ftpx://host/ds'"),
        ("s3://", "the URL names no location"),
        ("1bad://x", "malformed URL"),
    ],
)
def test_bad_references(ref: Any, message: str) -> None:
    with pytest.raises(InvalidManifest) as caught:
        parse_reference(ref)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


# -- construction ------------------------------------------------------------------------------


def test_manifest_copies_its_input_and_never_changes_it(tmp_path: Path) -> None:
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "a.csv").write_text("A")
    dataset = Dataset(path=tmp_path / "ds", tags={"k": 1})
    dataset_before = dataset.to_primitive()
    datasets: dict[str, Any] = {"one": "s3://b/one", "two": dataset, "three": str(tmp_path / "ds")}
    caller_copy = dict(datasets)
    manifest = Manifest(datasets=datasets, id="m-1")
    assert datasets == caller_copy
    datasets["one"] = "s3://b/changed"
    datasets["four"] = "s3://b/four"
    assert list(manifest.keys()) == ["one", "two", "three"]
    assert manifest.references["one"].url == "s3://b/one"
    manifest.serialise()
    manifest.get_dataset("two")
    assert dataset.to_primitive() == dataset_before
    with pytest.raises(TypeError):
        manifest.references["x"] = parse_reference("s3://b/x")  # type: ignore[index]


def test_manifest_mapping_behaviour(tmp_path: Path) -> None:
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "x.txt").write_text("x")
    dataset = Dataset(name="obj", files=[Datafile(path="s3://b/a.csv")])
    manifest = Manifest({"obj": dataset, "local": str(tmp_path / "local")})
    assert len(manifest) == 2 and "obj" in manifest and "nope" not in manifest
    assert list(manifest) == ["obj", "local"]
    assert manifest["obj"] is dataset
    assert manifest.get_dataset("local").files.one().name == "x.txt"
    assert manifest.datasets["obj"] is dataset
    assert manifest.datasets.get("nope") is None
    assert set(manifest.datasets) == {"obj", "local"}
    assert isinstance(manifest.id, str) and len(manifest.id) == 36
    assert repr(manifest).endswith("datasets=['obj', 'local'])>")


def test_unknown_key() -> None:
    manifest = Manifest({"a": "s3://b/a"})
    with pytest.raises(DatasetNotInManifest) as caught:
        manifest["b"]
    assert str(caught.value) == "no dataset 'b' in the manifest (keys: 'a')"
    assert isinstance(caught.value, KeyError)


def test_file_url_dataset_is_read_in_place(tmp_path: Path) -> None:
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "a.csv").write_text("A")
    manifest = Manifest({"d": (tmp_path / "ds").as_uri()})
    assert manifest["d"].files.one().local_path == str(tmp_path / "ds" / "a.csv")


@pytest.mark.parametrize(
    ("datasets", "kwargs", "message"),
    [
        ({"bad key": "s3://b/x"}, {}, "manifest: invalid dataset key 'bad key'"),
        ({"-lead": "s3://b/x"}, {}, "manifest: invalid dataset key '-lead'"),
        ({3: "s3://b/x"}, {}, "manifest: invalid dataset key 3"),
        (
            {"x": 3},
            {},
            "manifest: datasets.x: expected a string reference or a dataset object, got 3",
        ),
        ({"x": "ftpx://a/b"}, {}, "manifest: datasets.x: unsupported protocol 'ftpx'"),
        ({"x": {"files": "no"}}, {}, "manifest: datasets.x: dataset: 'files' must be a list"),
        (
            {"x": {"files": [], "tags": {"BAD": 1}}},
            {},
            "manifest: datasets.x: invalid tag key 'BAD'",
        ),
        (
            ["s3://b/x"],
            {},
            "manifest: datasets: expected an object of key to dataset reference, got list",
        ),
        ({}, {"id": 5}, "manifest: id must be a non-empty string, got 5"),
        ({}, {"id": ""}, "manifest: id must be a non-empty string, got ''"),
    ],
)
def test_bad_manifest_input(datasets: Any, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidManifest) as caught:
        Manifest(datasets, **kwargs)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_valid_keys() -> None:
    manifest = Manifest({"my_dataset-0": "s3://b/x", "A1": "s3://b/y", "9": "s3://b/z"})
    assert list(manifest) == ["my_dataset-0", "A1", "9"]


# -- serialisation -----------------------------------------------------------------------------


def test_serialise_shape() -> None:
    dataset = Dataset(name="d", files=[Datafile(path="s3://b/a.csv", hash_value="aa" * 32, size=1)])
    manifest = Manifest(
        {"cat": f"assay://ctx/name@{UUID}", "url": "gs://b/ds", "local": "rel/dir", "obj": dataset},
        id="m-1",
    )
    assert manifest.serialise() == {
        "id": "m-1",
        "datasets": {
            "cat": f"assay://ctx/name@{UUID}",
            "url": "gs://b/ds",
            "local": "rel/dir",
            "obj": dataset.to_primitive(),
        },
    }
    assert Manifest.from_json(manifest.to_json()) == manifest
    assert Manifest.deserialise(manifest.serialise()) == manifest


_catalog = st.builds(
    lambda ctx, name, uid: f"assay://{ctx}/{name}" + (f"@{uid}" if uid else ""),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,10}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,10}", fullmatch=True),
    st.one_of(st.none(), st.uuids().map(str)),
)
_url = st.builds(
    lambda protocol, path: f"{protocol}://{path}",
    st.sampled_from(["s3", "gs", "az", "memory", "file"]),
    st.from_regex(r"[a-z0-9]{1,8}(/[a-z0-9_.-]{1,8}){0,3}", fullmatch=True),
)
_local = st.from_regex(r"/?[a-z0-9_]{1,8}(/[a-z0-9_.-]{1,8}){0,3}", fullmatch=True)
_json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=5,
)
_tag_key = st.from_regex(r"[a-z0-9][a-z0-9_]{0,6}[a-z0-9]", fullmatch=True)
_label = st.from_regex(r"[a-z0-9][a-z0-9-]{0,6}[a-z0-9]", fullmatch=True)
_remote_file = st.builds(
    lambda name, tags, labels, size: Datafile(
        path=f"s3://bucket/{name}.csv", tags=tags, labels=labels, hash_value="ab" * 32, size=size
    ),
    st.from_regex(r"[a-z]{1,8}", fullmatch=True),
    st.dictionaries(_tag_key, _json_value, max_size=3),
    st.lists(_label, max_size=3),
    st.integers(0, 10**12),
)
_dataset = st.builds(
    lambda files, name, tags, labels: Dataset(
        files={f.path: f for f in files}.values(), name=name, tags=tags, labels=labels
    ),
    st.lists(_remote_file, max_size=4),
    st.one_of(st.none(), st.text(min_size=1, max_size=8)),
    st.dictionaries(_tag_key, _json_value, max_size=3),
    st.lists(_label, max_size=3),
)
_manifest = st.builds(
    Manifest,
    st.dictionaries(
        st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,10}", fullmatch=True),
        st.one_of(_catalog, _url, _local, _dataset),
        max_size=5,
    ),
    st.one_of(st.none(), st.uuids().map(str)),
)


@settings(max_examples=150, deadline=None)
@given(manifest=_manifest)
def test_manifest_round_trips_through_json(manifest: Manifest) -> None:
    text = manifest.to_json()
    again = Manifest.from_json(text)
    assert again == manifest
    assert again.to_json() == text
    assert Manifest.deserialise(json.loads(text)) == manifest


def test_from_file_resolves_relative_paths(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "data" / "one").mkdir(parents=True)
    (project / "data" / "one" / "a.csv").write_text("A")
    (project / "data" / "two").mkdir()
    (project / "data" / "two" / "b.csv").write_text("B")
    manifest_file = project / "manifest.json"
    manifest_file.write_text(
        json.dumps(
            {
                "id": "m-2",
                "datasets": {
                    "one": "data/one",
                    "two": {"name": "two", "path": "data/two", "files": ["data/two/b.csv"]},
                    "cloud": "gs://bucket/three",
                    "absolute": str(project / "data" / "one"),
                },
            }
        )
    )
    manifest = Manifest.from_json(manifest_file)
    assert manifest.references["one"].path == str(project / "data" / "one")
    assert manifest.references["absolute"].path == str(project / "data" / "one")
    assert manifest.references["cloud"].url == "gs://bucket/three"
    assert manifest["one"].files.one().name == "a.csv"
    two = manifest["two"]
    assert two.path == str(project / "data" / "two")
    assert two.files.one().local_path == str(project / "data" / "two" / "b.csv")
    assert two.files.one().relative_path == "b.csv"
    assert Manifest.from_json(str(manifest_file)) == manifest


def test_octue_list_form() -> None:
    octue = {
        "id": "m-3",
        "name": "ignored",
        "keys": {"first": 1, "second": 0},
        "datasets": ["gs://bucket/zero", {"name": "one", "files": []}],
    }
    manifest = Manifest.deserialise(octue)
    assert manifest.references["second"].url == "gs://bucket/zero"
    assert manifest["first"].name == "one"


def test_load_refusing_local_files(tmp_path: Path) -> None:
    text = json.dumps({"id": "m", "datasets": {"x": "some/local/dir"}})
    with pytest.raises(LocalFilesNotAllowed) as caught:
        Manifest.from_json(text, allow_local_files=False)
    assert str(caught.value) == (
        "manifest: dataset 'x' is a local path (some/local/dir); pass allow_local_files=True to "
        "use local datasets"
    )
    # A dataset object naming a local directory is refused before the directory is read.
    missing = json.dumps({"datasets": {"x": {"path": str(tmp_path / "missing")}}})
    with pytest.raises(
        LocalFilesNotAllowed, match=r"manifest: datasets\.x: the dataset is a local"
    ):
        Manifest.from_json(missing, allow_local_files=False)
    with pytest.raises(PathNotFound, match=r"manifest: datasets\.x: dataset directory not found"):
        Manifest.from_json(missing)
    local_files = json.dumps({"datasets": {"x": {"files": [str(tmp_path / "a.csv")]}}})
    with pytest.raises(LocalFilesNotAllowed, match="has local files"):
        Manifest.from_json(local_files, allow_local_files=False)
    remote = json.dumps({"datasets": {"x": {"files": ["s3://b/a.csv"]}, "y": "s3://b/y"}})
    assert len(Manifest.from_json(remote, allow_local_files=False)) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "{not json",
            "manifest: not valid JSON: Expecting property name enclosed in double quotes",
        ),
        ("{}", "manifest: missing 'datasets' (an object of key to reference)"),
        (
            '{"datasets": 3}',
            "manifest: datasets: expected an object of key to dataset reference, got int",
        ),
        (
            '{"datasets": {"x": 3}}',
            "manifest: datasets.x: expected a string reference or a dataset object, got 3",
        ),
        (
            '{"datasets": {"x": [1]}}',
            "manifest: datasets.x: expected a string reference or a dataset object, got [1]",
        ),
        ('{"datasets": {}, "id": 7}', "manifest: id must be a non-empty string, got 7"),
        (
            '{"datasets": ["s3://b/x"]}',
            "manifest: datasets: a list of datasets needs a 'keys' object",
        ),
        (
            '{"datasets": ["s3://b/x"], "keys": {"a": 4}}',
            "manifest: keys.a: 4 is not an index of datasets",
        ),
        (
            '{"datasets": {"x": {"files": [{"path": "s3://b/a", "labels": ["BAD"]}]}}}',
            "manifest: datasets.x: files[0]: invalid label 'BAD'",
        ),
    ],
)
def test_malformed_json(text: str, message: str) -> None:
    with pytest.raises(InvalidManifest) as caught:
        Manifest.from_json(text)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_malformed_top_level() -> None:
    with pytest.raises(InvalidManifest, match="manifest: expected a JSON object, got list"):
        Manifest.from_json("  [1]")
    with pytest.raises(InvalidManifest, match="manifest: expected a JSON object, got list"):
        Manifest.deserialise([1])
    with pytest.raises(
        InvalidManifest, match="manifest: expected JSON text or a file path, got int"
    ):
        Manifest.from_json(5)  # type: ignore[arg-type]


def test_manifest_file_problems(tmp_path: Path) -> None:
    with pytest.raises(PathNotFound, match=r"manifest: no manifest file at .*nope.json"):
        Manifest.from_json(tmp_path / "nope.json")
    with pytest.raises(PathNotFound, match=r"manifest: 'not json' is neither JSON text nor an"):
        Manifest.from_json("not json")
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\xff\xfe{")
    with pytest.raises(InvalidManifest, match=r"manifest: cannot read .*bad.json"):
        Manifest.from_json(bad)
    assert _listing(tmp_path) == ["bad.json"]
