"""Service configuration: ``assay.yaml`` (shaped like Octue's ``octue.yaml``) and service ids.

A service revision id (SRUID) is ``namespace/name:tag``; ``namespace/name`` alone names a
service whatever its tag. ``assay.yaml`` lists services::

    services:
      - name: fractal
        namespace: examples
        tag: 0.1.0
        app_source_path: .            # folder holding app.py (default: beside assay.yaml)
        twine_path: twine.json
        configuration_values: {width: 60}
        configuration_manifest: data/configuration_manifest.json   # or an inline manifest
        children:
          - {key: elevation, id: examples/elevation:0.1.0, backend: {name: local, path: ../elevation}}
        output_location: assay://results
        worker: {preload: [pandas], fresh_interpreter: false}   # how questions' processes start

Unknown keys are errors naming the key (a typo must not be silently ignored). Relative paths
are relative to the folder of the file they are written in. Octue's ``app_configuration_path``
(a JSON file holding ``configuration_values``, ``configuration_manifest``, ``children`` and
``output_location``) is read too, so an Octue service ports with its files unchanged.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.core.errors import InvalidServiceConfig

CONFIG_FILENAMES = ("assay.yaml", "assay.yml", "octue.yaml")
DEFAULT_TAG = "local"
#: The SRUID a Runner or Child uses for itself when given none (Octue's ``local/local:local``).
LOCAL_SRUID = "local/local:local"

_SEGMENT = r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?"
_TAG = r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}"
_SRUID = re.compile(rf"^(?P<namespace>{_SEGMENT})/(?P<name>{_SEGMENT})(?::(?P<tag>{_TAG}))?$")
_NAME = re.compile(rf"^{_SEGMENT}$")
_TAG_ONLY = re.compile(rf"^{_TAG}$")

SERVICE_KEYS = frozenset(
    {
        "name",
        "namespace",
        "tag",
        "description",
        "app_source_path",
        "twine_path",
        "configuration_values",
        "configuration_manifest",
        "children",
        "output_location",
        "app_configuration_path",
        "dockerfile_path",  # Octue's; accepted so an octue.yaml ports, not used here
        "worker",
    }
)
WORKER_KEYS = frozenset({"preload", "fresh_interpreter"})
APP_CONFIGURATION_KEYS = frozenset(
    {"configuration_values", "configuration_manifest", "children", "output_location"}
)
CHILD_KEYS = frozenset({"key", "id", "backend", "purpose"})


@dataclass(frozen=True)
class ServiceId:
    """A parsed ``namespace/name[:tag]``; ``tag`` is None when the id names no revision."""

    namespace: str
    name: str
    tag: str | None = None

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" + (f":{self.tag}" if self.tag else "")

    def matches(self, other: ServiceId) -> bool:
        """True when ``other`` (a registered revision) is what this id asks for."""
        same = (self.namespace, self.name) == (other.namespace, other.name)
        return same and (self.tag is None or self.tag == other.tag)


def parse_sruid(text: Any, require_tag: bool = False) -> ServiceId:
    """Parse ``namespace/name:tag``; InvalidServiceConfig with the rule when it is malformed."""
    match = _SRUID.match(text) if isinstance(text, str) else None
    if match is None or (require_tag and match.group("tag") is None):
        tag_rule = ":tag" if require_tag else "[:tag]"
        raise InvalidServiceConfig(
            f"invalid service id {text!r}: write it as namespace/name{tag_rule}, namespace and "
            "name in lower-case letters, digits and '-', the tag in letters, digits, '.', '_', "
            "'+' or '-' (e.g. examples/fractal:0.1.0)"
        )
    return ServiceId(match.group("namespace"), match.group("name"), match.group("tag"))


@dataclass(frozen=True)
class ChildSpec:
    """One entry of a service's ``children``: which service answers questions for ``key``."""

    key: str
    id: str
    backend: Mapping[str, Any]
    purpose: str = ""

    def to_primitive(self) -> dict[str, Any]:
        return {"key": self.key, "id": self.id, "backend": dict(self.backend)}


@dataclass(frozen=True)
class ServiceConfig:
    """One service from a config file, every path made absolute."""

    namespace: str
    name: str
    tag: str
    directory: Path  # the folder of the config file
    app_source_path: Path
    twine_path: Path
    configuration_values: Any = None
    configuration_manifest: Any = None  # a manifest dict (Octue's serialised form) or None
    configuration_manifest_base: Path | None = None  # anchors relative paths in it
    children: tuple[ChildSpec, ...] = ()
    output_location: str | None = None
    description: str = ""
    source: Path | None = None  # the config file
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: Modules the fork server imports once for this service's questions (``worker.preload``).
    preload: tuple[str, ...] = ()
    #: Each question in a freshly started interpreter, never a fork (``worker.fresh_interpreter``).
    fresh_interpreter: bool = False

    @property
    def sruid(self) -> str:
        return f"{self.namespace}/{self.name}:{self.tag}"

    @property
    def service_id(self) -> ServiceId:
        return ServiceId(self.namespace, self.name, self.tag)

    def to_primitive(self) -> dict[str, Any]:
        """A JSON form (sent to a worker process, which then needs no YAML parser)."""
        return {
            "namespace": self.namespace,
            "name": self.name,
            "tag": self.tag,
            "directory": str(self.directory),
            "app_source_path": str(self.app_source_path),
            "twine_path": str(self.twine_path),
            "configuration_values": self.configuration_values,
            "configuration_manifest": self.configuration_manifest,
            "configuration_manifest_base": (
                str(self.configuration_manifest_base) if self.configuration_manifest_base else None
            ),
            "children": [child.to_primitive() for child in self.children],
            "output_location": self.output_location,
            "description": self.description,
            "source": str(self.source) if self.source else None,
            "worker": {"preload": list(self.preload), "fresh_interpreter": self.fresh_interpreter},
        }

    @classmethod
    def from_primitive(cls, data: Mapping[str, Any]) -> ServiceConfig:
        base = data.get("configuration_manifest_base")
        return cls(
            namespace=data["namespace"],
            name=data["name"],
            tag=data["tag"],
            directory=Path(data["directory"]),
            app_source_path=Path(data["app_source_path"]),
            twine_path=Path(data["twine_path"]),
            configuration_values=data.get("configuration_values"),
            configuration_manifest=data.get("configuration_manifest"),
            configuration_manifest_base=Path(base) if base else None,
            children=tuple(
                _child(child, f"children[{index}]", "worker question")
                for index, child in enumerate(data.get("children") or [])
            ),
            output_location=data.get("output_location"),
            description=data.get("description") or "",
            source=Path(data["source"]) if data.get("source") else None,
            **_worker(data.get("worker"), "worker question"),
        )


def find_config_file(directory: str | os.PathLike[str]) -> Path | None:
    """The config file in ``directory`` (``assay.yaml`` first), or None."""
    for filename in CONFIG_FILENAMES:
        candidate = Path(directory) / filename
        if candidate.is_file():
            return candidate
    return None


def load_config(path: str | os.PathLike[str]) -> list[ServiceConfig]:
    """Every service in a config file (or in the config file of a folder)."""
    source = Path(path).absolute()
    if source.is_dir():
        found = find_config_file(source)
        if found is None:
            raise InvalidServiceConfig(
                f"no service config in {source}: expected one of {', '.join(CONFIG_FILENAMES)} "
                "(make one with 'assay init service NAME')"
            )
        source = found
    if not source.is_file():
        raise InvalidServiceConfig(f"service config not found: {source}")
    import yaml  # imported here: worker processes get their config as JSON and never need it

    try:
        document = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidServiceConfig(f"{source}: cannot read it: {error}") from None
    except yaml.YAMLError as error:
        raise InvalidServiceConfig(f"{source}: not valid YAML: {_one_line(str(error))}") from None
    return parse_config(document, source)


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def parse_config(document: Any, source: Path) -> list[ServiceConfig]:
    """Services from a parsed config document; ``source`` anchors relative paths."""
    where = str(source)
    if not isinstance(document, Mapping):
        raise InvalidServiceConfig(f"{where}: expected a mapping with a 'services' list")
    unknown = sorted(set(document) - {"services"})
    if unknown:
        raise InvalidServiceConfig(
            f"{where}: unknown key {unknown[0]!r} at the top level (the only key is 'services')"
        )
    services = document.get("services")
    if not isinstance(services, list) or not services:
        raise InvalidServiceConfig(f"{where}: 'services' must be a non-empty list of services")
    parsed = [_service(entry, f"services[{index}]", source) for index, entry in enumerate(services)]
    names = [service.sruid for service in parsed]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InvalidServiceConfig(f"{where}: service {duplicates[0]} is defined twice")
    return parsed


def _text(value: Any, key: str, where: str, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidServiceConfig(f"{where}.{key}: expected a non-empty string, got {value!r}")
    return value


def _service(entry: Any, where: str, source: Path) -> ServiceConfig:
    label = f"{source}: {where}"
    if not isinstance(entry, Mapping):
        raise InvalidServiceConfig(f"{label}: expected a mapping, got {entry!r}")
    unknown = sorted(set(entry) - SERVICE_KEYS)
    if unknown:
        raise InvalidServiceConfig(
            f"{label}: unknown key {unknown[0]!r} (known keys: {', '.join(sorted(SERVICE_KEYS))})"
        )
    name = _text(entry.get("name"), "name", label, required=True)
    namespace = _text(entry.get("namespace", "local"), "namespace", label, required=True)
    tag = _text(entry.get("tag", DEFAULT_TAG), "tag", label, required=True)
    assert name is not None and namespace is not None and tag is not None
    if "/" in name and "namespace" not in entry:  # Octue writes "namespace/name" as the name
        namespace, name = name.split("/", 1)
    for key, value, pattern in (("namespace", namespace, _NAME), ("name", name, _NAME)):
        if not pattern.match(value):
            raise InvalidServiceConfig(
                f"{label}.{key}: {value!r} is not a valid service {key}: use lower-case letters, "
                "digits and '-', starting and ending with a letter or digit"
            )
    if not _TAG_ONLY.match(str(tag)):
        raise InvalidServiceConfig(
            f"{label}.tag: {tag!r} is not a valid tag: use letters, digits, '.', '_', '+' or '-'"
        )
    directory = source.parent
    values: dict[str, Any] = {key: entry[key] for key in APP_CONFIGURATION_KEYS if key in entry}
    manifest_base = directory
    app_configuration = entry.get("app_configuration_path")
    if app_configuration is not None:
        path = _resolve(directory, _text(app_configuration, "app_configuration_path", label))
        loaded = _read_app_configuration(path, label)
        for key, value in loaded.items():
            values.setdefault(key, value)
        if "configuration_manifest" in loaded and "configuration_manifest" not in entry:
            manifest_base = path.parent
    app_source = _resolve(
        directory, _text(entry.get("app_source_path", "."), "app_source_path", label)
    )
    twine = _resolve(directory, _text(entry.get("twine_path", "twine.json"), "twine_path", label))
    manifest, manifest_base = _configuration_manifest(
        values.get("configuration_manifest"), manifest_base, label
    )
    children = values.get("children") or []
    if not isinstance(children, list):
        raise InvalidServiceConfig(f"{label}.children: expected a list, got {children!r}")
    specs = tuple(
        _child(child, f"children[{index}]", label, directory)
        for index, child in enumerate(children)
    )
    keys = [spec.key for spec in specs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise InvalidServiceConfig(f"{label}.children: key {repeated[0]!r} is given twice")
    output_location = values.get("output_location")
    if output_location is not None:
        output_location = _text(output_location, "output_location", label)
    description = entry.get("description") or ""
    if not isinstance(description, str):
        raise InvalidServiceConfig(f"{label}.description: expected a string")
    return ServiceConfig(
        namespace=namespace,
        name=name,
        tag=str(tag),
        directory=directory,
        app_source_path=app_source,
        twine_path=twine,
        configuration_values=values.get("configuration_values"),
        configuration_manifest=manifest,
        configuration_manifest_base=manifest_base if manifest is not None else None,
        children=specs,
        output_location=output_location,
        description=description,
        source=source,
        **_worker(entry.get("worker"), label),
    )


def _worker(value: Any, label: str) -> dict[str, Any]:
    """``worker: {preload: [module, ...], fresh_interpreter: bool}`` as ServiceConfig fields."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidServiceConfig(f"{label}.worker: expected a mapping, got {value!r}")
    unknown = sorted(set(value) - WORKER_KEYS)
    if unknown:
        known = ", ".join(sorted(WORKER_KEYS))
        raise InvalidServiceConfig(
            f"{label}.worker: unknown key {unknown[0]!r} (known keys: {known})"
        )
    preload = value.get("preload") or []
    if not isinstance(preload, list) or not all(
        isinstance(name, str) and re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*", name)
        for name in preload
    ):
        raise InvalidServiceConfig(
            f"{label}.worker.preload: expected a list of module names, got {preload!r}"
        )
    fresh = value.get("fresh_interpreter", False)
    if not isinstance(fresh, bool):
        raise InvalidServiceConfig(f"{label}.worker.fresh_interpreter: expected true or false")
    return {"preload": tuple(preload), "fresh_interpreter": fresh}


def _resolve(directory: Path, relative: str | None) -> Path:
    assert relative is not None
    path = Path(os.path.expanduser(relative))
    return path if path.is_absolute() else (directory / path).resolve()


def _read_app_configuration(path: Path, label: str) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidServiceConfig(f"{label}.app_configuration_path: no file at {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidServiceConfig(f"{label}: app configuration {path}: {error}") from None
    if not isinstance(document, Mapping):
        raise InvalidServiceConfig(f"{label}: app configuration {path}: expected a JSON object")
    unknown = sorted(set(document) - APP_CONFIGURATION_KEYS)
    if unknown:
        raise InvalidServiceConfig(
            f"{label}: app configuration {path}: unknown key {unknown[0]!r} (known keys: "
            f"{', '.join(sorted(APP_CONFIGURATION_KEYS))})"
        )
    return dict(document)


def _configuration_manifest(value: Any, base: Path, label: str) -> tuple[Any, Path]:
    """An inline manifest stays as it is; a string is a manifest file to read."""
    if value is None or isinstance(value, Mapping):
        return (dict(value) if value is not None else None), base
    if isinstance(value, str):
        path = _resolve(base, value)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InvalidServiceConfig(
                f"{label}.configuration_manifest: no manifest file at {path}"
            ) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InvalidServiceConfig(
                f"{label}.configuration_manifest: cannot read {path}: {error}"
            ) from None
        return document, path.parent
    raise InvalidServiceConfig(
        f"{label}.configuration_manifest: expected a manifest (mapping) or a path to a manifest "
        f"JSON file, got {value!r}"
    )


def _child(entry: Any, where: str, label: str, directory: Path | None = None) -> ChildSpec:
    if not isinstance(entry, Mapping):
        raise InvalidServiceConfig(f"{label}.{where}: expected a mapping, got {entry!r}")
    unknown = sorted(set(entry) - CHILD_KEYS)
    if unknown:
        raise InvalidServiceConfig(
            f"{label}.{where}: unknown key {unknown[0]!r} (known keys: {', '.join(sorted(CHILD_KEYS))})"
        )
    key = _text(entry.get("key"), "key", f"{label}.{where}", required=True)
    child_id = _text(entry.get("id"), "id", f"{label}.{where}", required=True)
    assert key is not None and child_id is not None
    parse_sruid(child_id)
    backend = entry.get("backend", {"name": "local"})
    if not isinstance(backend, Mapping) or not isinstance(backend.get("name"), str):
        raise InvalidServiceConfig(
            f"{label}.{where}.backend: expected a mapping with a 'name' (e.g. {{name: local}}), "
            f"got {backend!r}"
        )
    backend = dict(backend)
    path = backend.get("path")
    if path is not None:
        if not isinstance(path, str) or not path:
            raise InvalidServiceConfig(f"{label}.{where}.backend.path: expected a folder path")
        if directory is not None:
            backend["path"] = str(_resolve(directory, path))
    purpose = entry.get("purpose") or ""
    return ChildSpec(key=key, id=child_id, backend=backend, purpose=str(purpose))


def select_service(services: list[ServiceConfig], name: str | None, source: Path) -> ServiceConfig:
    """The service called ``name`` (a name or an id), or the only one when ``name`` is None."""
    if name is None:
        if len(services) == 1:
            return services[0]
        listed = ", ".join(service.sruid for service in services)
        raise InvalidServiceConfig(
            f"{source} defines {len(services)} services ({listed}); choose one with --service"
        )
    for service in services:
        if name in (service.name, service.sruid, f"{service.namespace}/{service.name}"):
            return service
    listed = ", ".join(service.sruid for service in services)
    raise InvalidServiceConfig(f"{source} has no service {name!r} (it defines {listed})")
