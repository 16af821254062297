"""Making bundle graphs quickly for the read-side tests (importable by name): the shared
``helpers.make_bundles`` (catalog rows only, no files: lineage and paging read only rows)."""

from __future__ import annotations

from helpers import make_bundles

__all__ = ["make_bundles"]
