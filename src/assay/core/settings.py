"""Where Assay keeps things, read from the environment once per workspace.

| variable | default | meaning |
|---|---|---|
| ``ASSAY_HOME`` | ``~/.assay`` | the local folder: catalog, blob store, views, stat cache |
| ``ASSAY_CATALOG_URL`` | ``sqlite:///$ASSAY_HOME/catalog.db`` | SQLAlchemy URL of the catalog |
| ``ASSAY_MAX_UNCOMMITTED`` | ``10`` | uncommitted versions kept per bundle name |
| ``ASSAY_LINK_TYPE`` | ``reflink,copy`` | how bundle views are made from blobs |
| ``ASSAY_FSYNC`` | ``0`` | ``1``: fsync blobs before their catalog rows commit |
| ``ASSAY_PACK_THRESHOLD`` | ``65536`` | blobs smaller than this (bytes) go into pack files; 0: never |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from assay.core.errors import InvalidInput

LINK_TYPES = ("reflink", "hardlink", "copy")


@dataclass(frozen=True)
class Settings:
    home: Path
    catalog_url: str
    max_uncommitted: int = 10
    link_types: tuple[str, ...] = ("reflink", "copy")
    fsync: bool = False
    pack_threshold: int = 65536

    @property
    def store_root(self) -> Path:
        return self.home / "store"

    @property
    def views_root(self) -> Path:
        return self.home / "views"

    @property
    def stat_cache_path(self) -> Path:
        return self.home / "statcache.db"

    @property
    def current_context_file(self) -> Path:
        return self.home / "current_context"


def _int_env(name: str, default: int, minimum: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise InvalidInput(f"{name}={raw!r} must be at least {minimum}")
    return value


def load_settings(home: str | os.PathLike[str] | None = None) -> Settings:
    """Settings from the environment; ``home`` overrides ``ASSAY_HOME``."""
    home_path = Path(home or os.environ.get("ASSAY_HOME") or Path.home() / ".assay")
    home_path = home_path.expanduser().absolute()
    catalog_url = os.environ.get("ASSAY_CATALOG_URL") or f"sqlite:///{home_path / 'catalog.db'}"
    link_types = tuple(
        part.strip()
        for part in os.environ.get("ASSAY_LINK_TYPE", "reflink,copy").split(",")
        if part.strip()
    )
    for link_type in link_types:
        if link_type not in LINK_TYPES:
            raise InvalidInput(
                f"ASSAY_LINK_TYPE: unknown link type {link_type!r}; use one or more of "
                + ", ".join(LINK_TYPES)
            )
    return Settings(
        home=home_path,
        catalog_url=catalog_url,
        max_uncommitted=_int_env("ASSAY_MAX_UNCOMMITTED", 10, 1),
        link_types=link_types or ("copy",),
        fsync=os.environ.get("ASSAY_FSYNC", "0") not in ("", "0", "false", "no"),
        pack_threshold=_int_env("ASSAY_PACK_THRESHOLD", 65536, 0),
    )
