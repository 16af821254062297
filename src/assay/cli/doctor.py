"""``assay doctor``: is the blob store bound to this catalog, and what to do when it is not."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console

from assay.bundles import health
from assay.bundles.workspace import open_workspace
from assay.cli.output import Output, human_size, short
from assay.cli.session import ContextOption, JsonOption
from assay.core.errors import InvalidInput

_LISTED = 10


def doctor(
    ctx: typer.Context,
    adopt: Annotated[
        bool,
        typer.Option(
            "--adopt",
            help="Bind the store to this catalog (the catalog must reference some of its "
            "blobs, unless --force).",
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="With --adopt: bind even without evidence.")
    ] = False,
    context: ContextOption = None,
    json_output: JsonOption = False,
) -> None:
    """Explain the state of the blob store and the catalog (and of one context with -c).

    Reads only, unless --adopt. The status is "bound", "new" (bound on the first write),
    "adoptable" (a store older than binding, adopted on the first write) or "mismatch"
    (writes and gc are refused; the report says the way out).
    """
    out = Output.of(ctx)
    if force and not adopt:
        raise InvalidInput("--force only goes with --adopt")
    workspace = open_workspace()
    adopted = health.adopt(workspace, force) if adopt else None
    report = health.examine(workspace, context)
    payload = _payload(report)
    if adopted is not None:
        payload["adopted"] = adopted
    out.emit(payload, lambda console: _text(console, report, adopted))


def _payload(report: health.HealthReport) -> dict[str, Any]:
    state = report.binding
    evidence = state.evidence
    payload: dict[str, Any] = {
        "status": state.status,
        "problem": state.problem,
        "way_out": list(state.way_out),
        "store": state.store_root,
        "store_id": state.store_id,
        "catalog": state.catalog,
        "catalog_store_id": state.catalog_id,
        "blobs": evidence.store_blobs,
        "blob_bytes": evidence.store_bytes,
        "bundles": evidence.bundles,
        "referenced_blobs": evidence.referenced,
        "referenced_blobs_present": evidence.referenced_present,
        "referenced_blobs_missing": evidence.referenced - evidence.referenced_present,
        "unreferenced_blobs": evidence.store_blobs - evidence.referenced_present,
        "quarantined": state.quarantined,
    }
    if report.context is not None:
        found = report.context
        payload["context"] = {
            "name": found.name,
            "bundles": found.bundles,
            "remote": found.remote,
            "incomplete_bundles": [{"uuid": r.uuid, "name": r.name} for r in found.incomplete],
        }
    return payload


def _text(console: Console, report: health.HealthReport, adopted: str | None) -> None:
    state = report.binding
    evidence = state.evidence
    lines = []
    if adopted is not None:
        lines.append(f"bound the store to this catalog (id {adopted})")
    lines += [
        f"status       {state.status}",
        f"store        {state.store_root} (id {state.store_id or 'none'})",
        f"catalog      {state.catalog} (store id {state.catalog_id or 'none'})",
        f"blobs        {evidence.store_blobs} ({human_size(evidence.store_bytes)}), "
        f"{evidence.store_blobs - evidence.referenced_present} unreferenced, "
        f"{state.quarantined} quarantined",
        f"bundles      {evidence.bundles}, referencing {evidence.referenced} blob(s), "
        f"{evidence.referenced - evidence.referenced_present} not in this store",
    ]
    if state.problem:
        lines.append(f"problem      {state.problem}")
    lines += [f"way out      {step}" for step in state.way_out]
    if report.context is not None:
        found = report.context
        lines.append(
            f"context      {found.name}: {found.bundles} bundle(s), remote "
            f"{found.remote or 'none'}, {len(found.incomplete)} with files not in this store"
        )
        for record in found.incomplete[:_LISTED]:
            lines.append(f"  {record.name}@{short(record.uuid)}")
        if found.incomplete:
            lines.append(
                f"  (not localized, or lost: 'assay localize NAME' or "
                f"'assay verify -c {found.name} --repair')"
            )
    for line in lines:
        console.print(line, markup=False, overflow="ignore", crop=False, soft_wrap=True)
