"""Keyset (cursor) pages of jobs and of a job's events: ``Page(items, next_cursor)``.

The cursors are opaque strings (see ``assay.bundles.pages``): for jobs the id of the last job
served (the store pages strictly after it, newest first), for events the last ``seq``.
"""

from __future__ import annotations

from collections.abc import Sequence

from assay.bundles.pages import Page, check_limit, decode_cursor, encode_cursor
from assay.bundles.workspace import Workspace
from assay.jobs import store
from assay.jobs.records import JobEvent, JobRecord


def page_jobs(
    *,
    kind: str | None = None,
    state: str | None = None,
    environment: str | None = None,
    owner: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
    workspace: Workspace | None = None,
) -> Page[JobRecord]:
    """One page of jobs, newest first, matching every filter given."""
    check_limit(limit)
    after = decode_cursor("j", cursor, (str,))[0] if cursor else None
    found = store.list_jobs(
        kind=kind,
        state=state,
        environment=environment,
        owner=owner,
        limit=limit + 1,
        after=after,
        workspace=workspace,
    )
    items = found[:limit]
    next_cursor = encode_cursor("j", (items[-1].job_id,)) if len(found) > limit else None
    return Page(items, next_cursor)


def page_events(
    job_id: str,
    *,
    types: Sequence[str] | None = None,
    limit: int = 200,
    cursor: str | None = None,
    workspace: Workspace | None = None,
) -> Page[JobEvent]:
    """One page of a job's events in order; ``next_cursor`` is set while more exist."""
    check_limit(limit)
    after_seq = decode_cursor("e", cursor, (int,))[0] if cursor else 0
    found = store.list_events(
        job_id, after_seq=after_seq, limit=limit + 1, types=types, workspace=workspace
    )
    items = found[:limit]
    next_cursor = encode_cursor("e", (items[-1].seq,)) if len(found) > limit else None
    return Page(items, next_cursor)
