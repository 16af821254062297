"""Environments: the default, declared files, service files, and malformed files (file:line)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from assay.core.errors import EnvironmentNotFound, InvalidEnvironmentConfig
from assay.core.settings import load_settings
from assay.jobs.environments import get_environment, load_environments


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("ASSAY_HOME", str(home))
    return home


def test_without_declarations_one_free_local_environment(home: Path) -> None:
    environments = load_environments()
    assert list(environments) == ["local"]
    local = environments["local"]
    assert local.free and local.executor == "local" and local.isolation == "none"
    assert local.max_jobs >= 1 and local.source == "default"


def test_declared_list_and_mapping_forms(home: Path) -> None:
    _write(
        home / "environments.yaml",
        """
        environments:
          - id: small
            cpu: 1
            ram_gb: 2
            max_jobs: 2
            max_duration_s: 60
            network: false
            isolation: sandbox
            price_min: 0.5
            requeue: true
            description: one sandboxed slot
            ro_paths: [/opt/models]
        """,
    )
    environments = load_environments()
    assert list(environments) == ["small"]  # once declared, only the declared exist
    small = environments["small"]
    assert (small.cpu, small.ram_gb, small.max_jobs, small.max_duration_s) == (1, 2.0, 2, 60.0)
    assert not small.network and small.isolation == "sandbox" and small.requeue
    assert not small.free and small.extra == {"ro_paths": ["/opt/models"]}
    assert small.source.endswith("environments.yaml:2")
    with pytest.raises(EnvironmentNotFound, match=r"no compute environment 'local'.*small"):
        get_environment("local")

    _write(
        home / "environments.yaml",
        """
        environments:
          big: {cpu: 8, max_jobs: 4}
          gpu:
            gpu: 1
        """,
    )
    environments = load_environments()
    assert sorted(environments) == ["big", "gpu"]
    assert environments["big"].cpu == 8 and environments["gpu"].gpu == 1


def test_a_services_assay_yaml_may_declare_environments(home: Path, tmp_path: Path) -> None:
    service = _write(
        tmp_path / "svc" / "assay.yaml",
        """
        services:
          - name: x
            namespace: y
        environments:
          - id: svc-env
            max_jobs: 3
        """,
    )
    plain = _write(tmp_path / "other" / "assay.yaml", "services: []\n")
    environments = load_environments(extra_files=[service, plain])
    assert list(environments) == ["svc-env"]
    assert get_environment("svc-env", extra_files=[service]).max_jobs == 3


def test_the_same_id_twice_names_both_places(home: Path, tmp_path: Path) -> None:
    _write(home / "environments.yaml", "environments:\n  - id: a\n")
    other = _write(tmp_path / "svc" / "assay.yaml", "environments:\n  - {id: a}\n")
    with pytest.raises(InvalidEnvironmentConfig) as caught:
        load_environments(extra_files=[other])
    assert str(other) in caught.value.message and "environments.yaml:2" in caught.value.message


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("environments:\n  - id: a\n    cpu: [1\n", 4, "not valid YAML"),
        ("environments:\n  - id: a\n\tcpu: 1\n", 3, "not valid YAML"),
        ("environmentz:\n  - id: a\n", 1, "unknown key"),
        ("environments:\n  - id: a\n  - id: b\n    cpu: two\n", 4, "cpu must be a whole number"),
        ("environments:\n  - id: a\n    network: 1\n", 3, "network must be true or false"),
        ("environments:\n  - id: a\n    isolation: docker\n", 3, "isolation 'docker'"),
        ("environments:\n  - id: a\n    executor: k8s\n", 3, "executor 'k8s'"),
        ("environments:\n  - id: a\n    max_jobs: 0\n", 3, "max_jobs must be more than 0"),
        ("environments:\n  - id: a\n    network: false\n", 3, "needs isolation: sandbox"),
        ("environments:\n  - id: Bad Id\n", 2, "environment id 'Bad Id'"),
        ("environments:\n  - id: a\n    Cpu: 1\n", 3, "bad key 'Cpu'"),
        ("environments: 3\n", 1, "must be a list"),
        ("- id: a\n", 1, "expected a mapping"),
    ],
)
def test_malformed_files_name_file_and_line(
    home: Path, text: str, line: int, fragment: str
) -> None:
    path = home / "environments.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(InvalidEnvironmentConfig) as caught:
        load_environments()
    assert caught.value.message.startswith(f"{path}:{line}:"), caught.value.message
    assert fragment in caught.value.message
    assert "\n" not in caught.value.message
    assert caught.value.code == "invalid_environment_config" and caught.value.exit_code == 2
    assert path.read_text() == text  # nothing rewritten


def test_settings_argument_overrides_the_environment(home: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-home"
    _write(other / "environments.yaml", "environments:\n  - id: elsewhere\n")
    assert list(load_environments(load_settings(other))) == ["elsewhere"]
    assert list(load_environments()) == ["local"]
