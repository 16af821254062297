"""Resolving a service id (``namespace/name[:tag]``) to a local service folder.

Where the local backend looks, in order:

1. the backend's own ``path`` (``{"name": "local", "path": "../elevation"}``): that folder's
   config must define the service;
2. entries registered in this process with ``register(service_id, folder)``;
3. every folder on ``ASSAY_SERVICES_PATH`` (``os.pathsep``-separated), scanned (three levels
   deep, hidden folders skipped) for ``assay.yaml`` / ``octue.yaml`` files.

``namespace/name`` without a tag matches any revision when exactly one is found. A config that
cannot be read is skipped while scanning (and named if the id is then not found). Scans are
cached and re-done only when an id is not found or a config file changed.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from assay.core.errors import AmbiguousReference, AssayError, ServiceNotFound
from assay.services.config import (
    CONFIG_FILENAMES,
    ServiceConfig,
    ServiceId,
    load_config,
    parse_sruid,
)

logger = logging.getLogger(__name__)

ENV_VAR = "ASSAY_SERVICES_PATH"
_MAX_DEPTH = 3
_SKIP = frozenset({"__pycache__", "node_modules", "venv", "site-packages"})

_lock = threading.Lock()
_explicit: dict[str, Path] = {}


@dataclass
class _Loaded:
    mtime_ns: int
    services: list[ServiceConfig]


_configs: dict[Path, _Loaded] = {}
_scanned: dict[str, tuple[list[Path], list[str]]] = {}  # ASSAY_SERVICES_PATH -> files, problems


def register(service_id: str, folder: str | os.PathLike[str]) -> None:
    """Make ``service_id`` resolve to the service config in ``folder`` (this process only)."""
    parse_sruid(service_id)
    with _lock:
        _explicit[service_id] = Path(folder).absolute()


def unregister(service_id: str) -> None:
    with _lock:
        _explicit.pop(service_id, None)


def _load(path: Path) -> list[ServiceConfig]:
    """A config file's services, cached while its modification time stays the same."""
    mtime = path.stat().st_mtime_ns
    with _lock:
        cached = _configs.get(path)
        if cached is not None and cached.mtime_ns == mtime:
            return cached.services
    services = load_config(path)
    with _lock:
        _configs[path] = _Loaded(mtime, services)
    return services


def _config_files(folder: Path, depth: int = 0) -> list[Path]:
    found: list[Path] = []
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError:
        return found
    names = {entry.name for entry in entries}
    for filename in CONFIG_FILENAMES:
        if filename in names:
            found.append(folder / filename)
            break
    if depth < _MAX_DEPTH:
        for entry in entries:
            if entry.name.startswith(".") or entry.name in _SKIP:
                continue
            if entry.is_dir(follow_symlinks=True):
                found.extend(_config_files(Path(entry.path), depth + 1))
    return found


def _scan(search_path: str, refresh: bool) -> tuple[list[Path], list[str]]:
    with _lock:
        if not refresh and search_path in _scanned:
            return _scanned[search_path]
    files: list[Path] = []
    for part in search_path.split(os.pathsep):
        if part.strip():
            files.extend(_config_files(Path(part).expanduser().absolute()))
    result: tuple[list[Path], list[str]] = (files, [])
    with _lock:
        _scanned[search_path] = result
    return result


def _matching(wanted: ServiceId, services: list[ServiceConfig]) -> list[ServiceConfig]:
    return [service for service in services if wanted.matches(service.service_id)]


def _pick(wanted: ServiceId, found: list[ServiceConfig]) -> ServiceConfig | None:
    unique = {service.sruid: service for service in found}
    if len(unique) > 1:
        listed = ", ".join(sorted(unique))
        raise AmbiguousReference(
            f"service id {wanted} matches several revisions ({listed}); give the tag"
        )
    return next(iter(unique.values()), None)


def resolve(service_id: str, path: str | os.PathLike[str] | None = None) -> ServiceConfig:
    """The local service that ``service_id`` names; ServiceNotFound saying where it looked."""
    wanted = parse_sruid(service_id)
    if path is not None:
        folder = Path(path).absolute()
        services = load_config(folder)
        match = _pick(wanted, _matching(wanted, services))
        if match is None:
            defined = ", ".join(service.sruid for service in services)
            raise ServiceNotFound(
                f"service {wanted} is not defined in {folder} (it defines {defined})"
            )
        return match
    with _lock:
        explicit = [folder for key, folder in _explicit.items() if wanted.matches(parse_sruid(key))]
    for folder in explicit:
        match = _pick(wanted, _matching(wanted, load_config(folder)))
        if match is not None:
            return match
    search_path = os.environ.get(ENV_VAR, "")
    problems: list[str] = []
    for refresh in (False, True):
        files, _ = _scan(search_path, refresh)
        found: list[ServiceConfig] = []
        problems = []
        for file in files:
            try:
                found.extend(_matching(wanted, _load(file)))
            except (AssayError, OSError) as error:
                problems.append(f"{file}: {error}")
        match = _pick(wanted, found)
        if match is not None:
            return match
    where = f"{ENV_VAR}={search_path}" if search_path else f"{ENV_VAR} is not set"
    skipped = f"; skipped unreadable configs: {'; '.join(problems[:3])}" if problems else ""
    raise ServiceNotFound(
        f"service {wanted} is not registered: no assay.yaml defines it ({where}; "
        f"{len(_explicit)} explicit entries){skipped}. Add its folder to {ENV_VAR}, register it, "
        "or give the child's backend a path: {name: local, path: FOLDER}",
        details={"service_id": str(wanted)},
    )


def clear_cache() -> None:
    with _lock:
        _configs.clear()
        _scanned.clear()
