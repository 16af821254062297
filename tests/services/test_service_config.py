"""assay.yaml: unknown keys are errors naming the key; service ids; Octue's files port."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assay.core.errors import InvalidServiceConfig
from assay.services import load_config, parse_sruid
from assay.services.config import ServiceConfig, select_service


def _write(folder: Path, text: str, filename: str = "assay.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / filename).write_text(text)
    return folder


def test_sruid_parsing() -> None:
    sid = parse_sruid("examples/fractal:0.1.0")
    assert (sid.namespace, sid.name, sid.tag) == ("examples", "fractal", "0.1.0")
    assert parse_sruid("examples/fractal").tag is None
    assert parse_sruid("a/b").matches(parse_sruid("a/b:2"))
    assert not parse_sruid("a/b:1").matches(parse_sruid("a/b:2"))
    for bad in ("fractal", "Examples/fractal:1", "a/b:", "a//b", "a/b:1 2", 3):
        with pytest.raises(InvalidServiceConfig, match="invalid service id"):
            parse_sruid(bad)


def test_a_full_config(tmp_path: Path) -> None:
    folder = _write(
        tmp_path / "svc",
        """
services:
  - name: parent
    namespace: examples
    tag: 0.2.0
    app_source_path: src
    configuration_values: {factor: 3}
    configuration_manifest: {id: m, datasets: {model: data/model}}
    children:
      - {key: elevation, id: examples/elevation:0.1.0, backend: {name: local, path: ../elevation}}
    output_location: assay://results
""",
    )
    (service,) = load_config(folder)
    assert service.sruid == "examples/parent:0.2.0"
    assert service.app_source_path == (folder / "src").resolve()
    assert service.twine_path == (folder / "twine.json").resolve()
    assert service.configuration_values == {"factor": 3}
    assert service.children[0].backend["path"] == str((tmp_path / "elevation").resolve())
    assert service.output_location == "assay://results"
    assert ServiceConfig.from_primitive(json.loads(json.dumps(service.to_primitive()))) == service


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("services:\n  - name: a\n    twine_pth: t.json\n", "unknown key 'twine_pth'"),
        ("services:\n  - name: a\nextra: 1\n", "unknown key 'extra' at the top level"),
        (
            "services:\n  - name: a\n    children: [{key: k, id: a/b:1, colour: red}]\n",
            "unknown key 'colour'",
        ),
        ("services: []\n", "non-empty list"),
        ("services:\n  - namespace: x\n", "name: expected a non-empty string"),
        ("services:\n  - name: Bad_Name\n", "not a valid service name"),
        ("services:\n  - name: a\n    children: [{key: k, id: nope}]\n", "invalid service id"),
        ("services: [\n", "not valid YAML"),
    ],
)
def test_bad_config_is_refused_naming_the_problem(tmp_path: Path, text: str, fragment: str) -> None:
    folder = _write(tmp_path / "svc", text)
    with pytest.raises(InvalidServiceConfig) as caught:
        load_config(folder)
    assert fragment in caught.value.message


def test_no_config_in_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidServiceConfig, match="no service config in"):
        load_config(tmp_path)


def test_octue_yaml_and_app_configuration_port(tmp_path: Path) -> None:
    folder = _write(
        tmp_path / "octue-svc",
        "services:\n  - name: template-child-services/parent-service\n"
        "    app_configuration_path: app_configuration.json\n",
        filename="octue.yaml",
    )
    (folder / "app_configuration.json").write_text(
        json.dumps({"configuration_values": {"a": 1}, "output_location": "assay://out"})
    )
    (service,) = load_config(folder)
    assert (service.namespace, service.name) == ("template-child-services", "parent-service")
    assert service.configuration_values == {"a": 1}
    (folder / "app_configuration.json").write_text(json.dumps({"surprise": 1}))
    with pytest.raises(InvalidServiceConfig, match="unknown key 'surprise'"):
        load_config(folder)


def test_select_service(tmp_path: Path) -> None:
    folder = _write(tmp_path / "two", "services:\n  - name: a\n  - name: b\n")
    services = load_config(folder)
    with pytest.raises(InvalidServiceConfig, match="choose one with --service"):
        select_service(services, None, folder)
    assert select_service(services, "b", folder).name == "b"
    with pytest.raises(InvalidServiceConfig, match="has no service 'c'"):
        select_service(services, "c", folder)
