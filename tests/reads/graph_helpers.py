"""Making bundle graphs quickly for the read-side tests (importable by name).

Bundles are written through the catalog's own insert (one transaction for the whole graph),
with no files: the lineage and paging reads only look at catalog rows.
"""

from __future__ import annotations

import uuid as uuid_module
from collections.abc import Mapping, Sequence

from assay.bundles import operations
from assay.bundles.workspace import open_workspace
from assay.catalog import queries
from assay.core.records import BundleRecord, Dependency


def make_bundles(
    context: str,
    names: Sequence[str],
    parents: Mapping[str, Sequence[str]] | None = None,
    *,
    tags: Mapping[str, Mapping[str, str]] | None = None,
    created: Mapping[str, float] | None = None,
) -> dict[str, str]:
    """Bundles ``names`` in ``context`` (made if missing); ``parents[n]`` are the names ``n``
    depends on. Returns ``{name: uuid}``."""
    workspace = open_workspace()
    operations.create_context(workspace, context)
    uuids = {name: str(uuid_module.uuid4()) for name in names}
    with workspace.write() as conn:
        ctx_id = operations.require_context(conn, context)
        for position, name in enumerate(names):
            record = BundleRecord(
                uuid=uuids[name],
                context=context,
                name=name,
                processing_name=name,
                owner="test",
                created=(created or {}).get(name, 1_700_000_000.0 + position),
                committed=True,
                content_hash="0" * 64,
                presentation="json",
                data={"value": position},
                params={},
                code_version={},
                start_time=None,
                stop_time=None,
                file_count=0,
                total_size=0,
                tags=dict((tags or {}).get(name, {})),
                dependencies=tuple(
                    Dependency(uuids[p], "depends_on", f"in{i}")
                    for i, p in enumerate((parents or {}).get(name, ()))
                ),
            )
            queries.insert_bundle(conn, ctx_id, record, [])
    return uuids
