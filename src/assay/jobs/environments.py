"""Compute environments: where jobs run and with which limits.

Declared in ``ASSAY_HOME/environments.yaml`` and in the ``environments`` key of a service's
``assay.yaml`` (pass such files as ``extra_files``; the services layer owns finding them)::

    environments:
      - id: small
        executor: local          # local | dask
        cpu: 1                   # cores the job may use (CPU affinity; CPU-time rlimit)
        ram_gb: 2                # address-space rlimit
        disk_gb: 5               # largest file the job may write (file-size rlimit)
        gpu: 0
        max_jobs: 2              # running at once; more wait QUEUED (FIFO), never refused
        max_duration_s: 600      # wall clock; past it the job ends TIMED_OUT
        price_min: 0             # 0 = free
        network: false           # false: a private network namespace (needs the sandbox)
        isolation: sandbox       # sandbox (bubblewrap) | none
        requeue: false           # true: a job whose supervisor died is re-QUEUED, not FAILED
        description: one small sandboxed slot
        scheduler: tcp://...     # any other key is an executor option, kept in ``extra``

When no file declares an environment, one free local environment ``local`` exists; once any
environment is declared, only the declared ones exist. Errors (YAML syntax, unknown keys of a
known type, wrong types, duplicate ids) raise ``InvalidEnvironmentConfig`` naming file and line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from assay.core.errors import EnvironmentNotFound, InvalidEnvironmentConfig
from assay.core.settings import Settings, load_settings
from assay.jobs.dask_config import parse_dask_options

ENVIRONMENTS_FILENAME = "environments.yaml"
EXECUTORS = ("local", "dask")
ISOLATIONS = ("none", "sandbox")
_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class Environment:
    id: str
    executor: str = "local"
    cpu: int | None = None
    ram_gb: float | None = None
    disk_gb: float | None = None
    gpu: int = 0
    max_jobs: int = 1
    max_duration_s: float | None = None
    price_min: float = 0.0
    network: bool = True
    isolation: str = "none"
    requeue: bool = False
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    #: Where it was declared (``file:line``; ``"default"`` for the built-in ``local``).
    source: str = "default"

    @property
    def free(self) -> bool:
        return self.price_min == 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_environment() -> Environment:
    return Environment(
        id="local",
        max_jobs=max(1, os.cpu_count() or 1),
        description="this machine, unisolated (no environments declared)",
    )


# -- YAML with line numbers -----------------------------------------------------------------
class _Lines(dict[Any, Any]):
    """A YAML mapping that remembers the line of itself and of each of its keys."""

    line: int = 0
    key_lines: dict[str, int]


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _Lines:
    mapping = _Lines(loader.construct_mapping(node, deep=True))
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {
        str(key_node.value): key_node.start_mark.line + 1 for key_node, _ in node.value
    }
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidEnvironmentConfig(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass: no object tags
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InvalidEnvironmentConfig(f"{where}: not valid YAML: {problem}") from None


# -- parsing ------------------------------------------------------------------------------------
_FIELDS: dict[str, tuple[type | tuple[type, ...], bool]] = {
    # key: (accepted types, may be null)
    "executor": (str, False),
    "cpu": (int, True),
    "ram_gb": ((int, float), True),
    "disk_gb": ((int, float), True),
    "gpu": (int, False),
    "max_jobs": (int, False),
    "max_duration_s": ((int, float), True),
    "price_min": ((int, float), False),
    "network": (bool, False),
    "isolation": (str, False),
    "requeue": (bool, False),
    "description": (str, False),
}


def _fail(source: Path | str, line: int, message: str) -> InvalidEnvironmentConfig:
    return InvalidEnvironmentConfig(
        f"{source}:{line}: {message}", {"file": str(source), "line": line}
    )


def parse_environment(entry: Mapping[str, Any], source: Path | str, line: int = 0) -> Environment:
    """One environment from a mapping (as written in YAML); errors name ``source:line``."""
    key_lines = getattr(entry, "key_lines", {})
    line = getattr(entry, "line", line)

    def at(key: str) -> int:
        return int(key_lines.get(key, line))

    env_id = entry.get("id")
    if not isinstance(env_id, str) or not _ID.match(env_id):
        raise _fail(
            source,
            at("id"),
            f"environment id {env_id!r}: use lowercase letters, digits, '-', '_', '.'",
        )
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in entry.items():
        if key == "id":
            continue
        if key not in _FIELDS:
            if not isinstance(key, str) or not re.match(r"^[a-z][a-z0-9_]*$", key):
                raise _fail(source, at(str(key)), f"environment {env_id}: bad key {key!r}")
            extra[key] = _plain(value)
            continue
        types, nullable = _FIELDS[key]
        if value is None and nullable:
            values[key] = None
            continue
        # bool is an int in Python: refuse `cpu: true` and `network: 1` alike.
        ok = isinstance(value, types) and (isinstance(value, bool) == (types is bool))
        if not ok:
            raise _fail(
                source,
                at(key),
                f"environment {env_id}: {key} must be {_type_name(types)}, got {value!r}",
            )
        values[key] = (
            float(value)
            if key in ("ram_gb", "disk_gb", "max_duration_s", "price_min") and value is not None
            else value
        )
    environment = Environment(id=env_id, **values, extra=extra, source=f"{source}:{line}")
    _check_values(environment, source, at)
    return environment


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _type_name(types: type | tuple[type, ...]) -> str:
    names = {int: "a whole number", float: "a number", str: "text", bool: "true or false"}
    if isinstance(types, tuple):
        return "a number"
    return names.get(types, types.__name__)


def _check_values(env: Environment, source: Path | str, at: Any) -> None:
    if env.executor not in EXECUTORS:
        raise _fail(
            source,
            at("executor"),
            f"environment {env.id}: executor {env.executor!r}: use one of {', '.join(EXECUTORS)}",
        )
    if env.isolation not in ISOLATIONS:
        raise _fail(
            source,
            at("isolation"),
            f"environment {env.id}: isolation {env.isolation!r}: use one of {', '.join(ISOLATIONS)}",
        )
    positive = {
        "cpu": env.cpu,
        "max_jobs": env.max_jobs,
        "ram_gb": env.ram_gb,
        "disk_gb": env.disk_gb,
        "max_duration_s": env.max_duration_s,
    }
    for key, value in positive.items():
        if value is not None and value <= 0:
            raise _fail(
                source, at(key), f"environment {env.id}: {key} must be more than 0, got {value}"
            )
    if env.gpu < 0 or env.price_min < 0:
        raise _fail(
            source,
            at("gpu" if env.gpu < 0 else "price_min"),
            f"environment {env.id}: gpu and price_min cannot be negative",
        )
    if env.executor == "dask":
        try:
            parse_dask_options(env.id, env.extra)
        except ValueError as exc:
            key = next((k for k in ("scheduler", "cluster") if k in env.extra), "executor")
            raise _fail(source, at(key), str(exc)) from None
    if not env.network and env.isolation != "sandbox":
        raise _fail(
            source,
            at("network"),
            f"environment {env.id}: network: false needs isolation: sandbox "
            "(a private network namespace is made by the sandbox)",
        )


def _key_line(mapping: Any, key: str, default: int) -> int:
    return int(getattr(mapping, "key_lines", {}).get(key, default))


def environments_in_file(path: Path, *, required: bool = True) -> list[Environment]:
    """The environments declared in ``path`` (its top-level ``environments`` key, a list of
    mappings or a mapping of id -> mapping). ``required=False``: a file without the key (a
    service's ``assay.yaml``) declares none; other keys of that file are not looked at."""
    document = _read_yaml(path)
    if document is None:
        document = _Lines()
    if not isinstance(document, dict):
        raise _fail(path, 1, "expected a mapping with an 'environments' key")
    if "environments" not in document:
        if required and set(document) - {"environments"}:
            raise _fail(
                path,
                getattr(document, "line", 1),
                f"unknown keys {sorted(map(str, document))}; expected 'environments'",
            )
        return []
    if required:
        unknown = sorted(str(k) for k in document if k != "environments")
        if unknown:
            raise _fail(
                path,
                _key_line(document, unknown[0], 1),
                f"unknown key {unknown[0]!r}; expected only 'environments'",
            )
    declared = document["environments"]
    line = _key_line(document, "environments", 1)
    entries: list[Any]
    if declared is None:
        entries = []
    elif isinstance(declared, list):
        entries = declared
    elif isinstance(declared, dict):
        entries = []
        for env_id, body in declared.items():
            if not isinstance(body, dict):
                raise _fail(
                    path,
                    _key_line(declared, str(env_id), line),
                    f"environment {env_id!r} must be a mapping",
                )
            merged = _Lines({"id": env_id, **body})
            merged.line = getattr(body, "line", line)
            merged.key_lines = {
                "id": _key_line(declared, str(env_id), line),
                **getattr(body, "key_lines", {}),
            }
            entries.append(merged)
    else:
        raise _fail(path, line, "'environments' must be a list of mappings")
    result = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise _fail(path, line, f"each environment must be a mapping, got {entry!r}")
        result.append(parse_environment(entry, path))
    return result


def load_environments(
    settings: Settings | None = None, *, extra_files: Iterable[Path] = ()
) -> dict[str, Environment]:
    """Every declared environment by id (``ASSAY_HOME/environments.yaml`` first, then
    ``extra_files``, e.g. services' ``assay.yaml``); ``{"local": default}`` when none is
    declared. The same id declared twice is an error naming both places."""
    settings = settings or load_settings()
    found: dict[str, Environment] = {}
    home_file = settings.home / ENVIRONMENTS_FILENAME
    sources: list[tuple[Path, bool]] = []
    if home_file.exists():
        sources.append((home_file, True))
    sources.extend((Path(p), False) for p in extra_files)
    for path, required in sources:
        for environment in environments_in_file(path, required=required):
            if environment.id in found:
                raise InvalidEnvironmentConfig(
                    f"{environment.source}: environment {environment.id!r} is already declared "
                    f"at {found[environment.id].source}"
                )
            found[environment.id] = environment
    if not found:
        default = default_environment()
        found[default.id] = default
    return found


def get_environment(
    env_id: str, settings: Settings | None = None, *, extra_files: Iterable[Path] = ()
) -> Environment:
    environments = load_environments(settings, extra_files=extra_files)
    try:
        return environments[env_id]
    except KeyError:
        raise EnvironmentNotFound(
            f"no compute environment {env_id!r} (declared: {', '.join(sorted(environments))})",
            {"environment": env_id},
        ) from None
