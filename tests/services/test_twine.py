"""Twine validation: the twine itself, values, manifests, children, credentials; offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.core.errors import InvalidStrand, InvalidTwine, MissingCredential
from assay.core.manifest import Manifest
from assay.resources import Datafile, Dataset
from assay.services import Twine

VALUES_TWINE = {
    "input_values_schema": {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 0},
            "points": {"type": "array", "items": {"type": "number"}},
        },
        "required": ["n"],
    }
}


def test_invalid_twine_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "twine.json"
    path.write_text('{"input_values_schema": ')
    with pytest.raises(InvalidTwine, match=r"twine.json: not valid JSON"):
        Twine(path)


def test_missing_twine_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidTwine, match="no twine file at"):
        Twine(tmp_path / "absent.json")


@pytest.mark.parametrize(
    ("twine", "fragment"),
    [
        ({"input_value_schema": {}}, "unknown strand 'input_value_schema'"),
        ({"input_values_schema": []}, "twine.input_values_schema: [] is not of type 'object'"),
        ({"credentials": [{"name": "lower_case"}]}, "twine.credentials[0].name"),
        ({"children": [{"purpose": "no key"}]}, "'key' is a required property"),
        (
            {"input_manifest": {"datasets": {"raw": {"purpose": "x", "colour": "red"}}}},
            "twine.input_manifest",
        ),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_twine_breaking_the_twine_schema(twine: object, fragment: str) -> None:
    with pytest.raises(InvalidTwine) as caught:
        Twine(json.dumps(twine) if isinstance(twine, list) else twine)
    assert fragment in caught.value.message


def test_strand_schema_that_is_not_a_schema() -> None:
    with pytest.raises(InvalidTwine, match=r"input_values_schema.type: not a valid JSON Schema"):
        Twine({"input_values_schema": {"type": "integr"}})


def test_remote_ref_is_refused_when_the_twine_loads() -> None:
    twine = {"input_values_schema": {"$ref": "https://example.com/schema.json"}}
    with pytest.raises(InvalidTwine) as caught:
        Twine(twine)
    assert "validation runs offline" in caught.value.message
    assert "input_values_schema" in caught.value.message


def test_local_refs_and_metaschema_refs_work() -> None:
    twine = Twine(
        {
            "input_values_schema": {
                "$defs": {"positive": {"type": "integer", "minimum": 1}},
                "type": "object",
                "properties": {
                    "n": {"$ref": "#/$defs/positive"},
                    "schema": {"$ref": "https://json-schema.org/draft/2020-12/schema"},
                },
            }
        }
    )
    twine.validate_input_values({"n": 2, "schema": {"type": "string"}})
    with pytest.raises(InvalidStrand, match=r"input_values.n: 0 is less than the minimum of 1"):
        twine.validate_input_values({"n": 0})


def test_value_errors_name_strand_path_and_rule() -> None:
    twine = Twine(VALUES_TWINE)
    with pytest.raises(InvalidStrand) as caught:
        twine.validate_input_values({"n": -1})
    assert caught.value.message == "input_values.n: -1 is less than the minimum of 0"
    assert caught.value.details["rule"] == "minimum"
    assert caught.value.details["path"] == "input_values.n"
    with pytest.raises(InvalidStrand, match=r"input_values.points\[1\]: 'x' is not of type"):
        twine.validate_input_values({"n": 1, "points": [1.0, "x"]})
    with pytest.raises(InvalidStrand, match="input_values: 'n' is a required property"):
        twine.validate_input_values({})
    with pytest.raises(InvalidStrand, match="input_values: missing"):
        twine.validate_input_values(None)


def test_values_without_a_schema_are_not_checked() -> None:
    assert Twine({}).validate_output_values([1, 2, 3]) == [1, 2, 3]
    assert Twine("{}").available_strands == set()


def test_other_drafts_named_by_the_schema_are_honoured() -> None:
    twine = Twine(
        {
            "input_values_schema": {
                "$schema": "http://json-schema.org/draft-07/schema#",
                "type": "object",
                "properties": {"xs": {"type": "array", "items": [{"type": "number"}]}},
            }
        }
    )
    twine.validate_input_values({"xs": [1.0]})
    with pytest.raises(InvalidStrand, match=r"input_values.xs\[0\]"):
        twine.validate_input_values({"xs": ["a"]})


def _twine_with_template() -> Twine:
    return Twine(
        {
            "input_manifest": {
                "datasets": {
                    "met_mast_data": {
                        "purpose": "met mast data",
                        "file_tags_template": {
                            "type": "object",
                            "properties": {"height": {"type": "number"}},
                            "required": ["height"],
                        },
                    },
                    "extra": {"purpose": "optional", "optional": True},
                }
            }
        }
    )


def test_missing_required_dataset() -> None:
    twine = _twine_with_template()
    with pytest.raises(InvalidStrand) as caught:
        twine.validate_manifest("input_manifest", Manifest(datasets={}))
    assert "input_manifest.datasets.met_mast_data" in caught.value.message
    assert "is missing" in caught.value.message
    with pytest.raises(InvalidStrand, match="no manifest was given"):
        twine.validate_manifest("input_manifest", None)


def test_file_tags_must_meet_the_template(tmp_path: Path) -> None:
    good = Datafile(path=str(tmp_path / "a.csv"), tags={"height": 10})
    bad = Datafile(path=str(tmp_path / "b.csv"), tags={"height": "tall"})
    twine = _twine_with_template()
    ok = Manifest(datasets={"met_mast_data": Dataset(files=[good], path=str(tmp_path))})
    twine.validate_manifest("input_manifest", ok)
    manifest = Manifest(datasets={"met_mast_data": Dataset(files=[good, bad], path=str(tmp_path))})
    with pytest.raises(InvalidStrand) as caught:
        twine.validate_manifest("input_manifest", manifest)
    message = caught.value.message
    assert message.startswith("input_manifest.datasets.met_mast_data.files[b.csv].tags.height:")
    assert "'tall' is not of type 'number'" in message
    assert caught.value.details["rule"] == "type"


def test_list_form_manifest_strand_is_read() -> None:
    twine = Twine({"output_manifest": {"datasets": [{"key": "cleaned", "purpose": "x"}]}})
    assert twine.manifests["output_manifest"] == {"cleaned": {"purpose": "x"}}
    with pytest.raises(InvalidStrand, match=r"output_manifest.datasets.cleaned"):
        twine.validate_manifest("output_manifest", Manifest())


def test_children_keys() -> None:
    twine = Twine({"children": [{"key": "elevation", "purpose": "heights"}]})
    twine.validate_children([{"key": "elevation", "id": "a/b:1"}])
    with pytest.raises(InvalidStrand, match=r"children.wind: the twine declares no child 'wind'"):
        twine.validate_children([{"key": "elevation"}, {"key": "wind"}])
    with pytest.raises(InvalidStrand, match=r"children.elevation: the twine needs a child"):
        twine.validate_children([])


def test_missing_credential_is_named() -> None:
    twine = Twine({"credentials": [{"name": "MYAPI_SECRET_KEY", "purpose": "the api"}]})
    twine.validate_credentials({"MYAPI_SECRET_KEY": "s3cret"})
    with pytest.raises(MissingCredential, match="MYAPI_SECRET_KEY \\(the api\\) is not set"):
        twine.validate_credentials({})


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=-1000, max_value=1000))
def test_integers_are_valid_exactly_when_not_negative(n: int) -> None:
    twine = Twine(VALUES_TWINE)
    if n >= 0:
        twine.validate_input_values({"n": n})
    else:
        with pytest.raises(InvalidStrand, match=f"input_values.n: {n} is less than"):
            twine.validate_input_values({"n": n})


def test_a_twine_file_is_loaded_once_while_unchanged(tmp_path: Path) -> None:
    """``load_twine`` (the asker's twines, and those a fork server prepares for its children)
    keeps a loaded twine while the file's mtime and size are unchanged; an edit is loaded, and a
    bad edit refused."""
    from assay.services.twine import load_twine

    path = tmp_path / "twine.json"
    path.write_text(json.dumps({"input_values_schema": {"type": "object"}}))
    first = load_twine(path)
    assert load_twine(path) is first
    path.write_text(json.dumps({"input_values_schema": {"type": "integer"}}))
    second = load_twine(path)
    assert second is not first and second.raw["input_values_schema"] == {"type": "integer"}
    path.write_text(json.dumps({"input_values_schema": {"type": 5}}))
    with pytest.raises(InvalidTwine, match="not a valid JSON Schema"):
        load_twine(path)
    path.unlink()
    with pytest.raises(InvalidTwine, match="no twine file at"):
        load_twine(path)
