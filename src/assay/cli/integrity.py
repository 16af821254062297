"""``assay verify`` and ``assay gc``: keeping the blob store honest.

``gc`` and ``verify --repair`` call the domain (``bundles.maintenance``) directly: the seed API's
``gc`` takes a grace period only, and the API has no repair.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from assay.bundles import maintenance, operations
from assay.bundles.workspace import Workspace, open_workspace
from assay.cli.output import Output, cell, human_size, short, table
from assay.cli.progress import verify_progress
from assay.cli.session import ContextOption, JsonOption, require_context
from assay.core.errors import InvalidInput, VerificationFailed
from assay.core.records import GcReport, RepairReport, VerifyProblem

_NAMED_IN_MESSAGE = 5


def _problem_dict(problem: VerifyProblem) -> dict[str, str]:
    return {
        "context": problem.context,
        "bundle_uuid": problem.bundle_uuid,
        "bundle_name": problem.bundle_name,
        "path": problem.path,
        "blob_hash": problem.blob_hash,
        "problem": problem.problem,
    }


def _failure_message(problems: list[VerifyProblem], checked: int) -> str:
    named = "; ".join(
        f"{p.bundle_name}@{short(p.bundle_uuid)} {p.path} (blob {short(p.blob_hash, 12)} "
        f"{p.problem})"
        for p in problems[:_NAMED_IN_MESSAGE]
    )
    more = len(problems) - _NAMED_IN_MESSAGE
    named += f"; and {more} more" if more > 0 else ""
    return f"{len(problems)} of {checked} files failed verification: {named}"


def verify(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="NAME|UUID",
            help="One bundle to verify (default: the whole context).",
            show_default=False,
        ),
    ] = None,
    all_contexts: Annotated[
        bool, typer.Option("--all", help="Verify every bundle in every context.")
    ] = False,
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Restore missing or quarantined blobs from each bundle's context's remote.",
        ),
    ] = False,
    context: ContextOption = None,
    json_output: JsonOption = False,
) -> None:
    """Re-hash stored blobs and report any that are missing or corrupted (exit code 5).

    A corrupted blob is moved to store/quarantine/, so adding intact content again restores
    it; --repair restores it (and missing blobs) from the remote when the remote has it.
    """
    out = Output.of(ctx)
    if name is not None and all_contexts:
        raise InvalidInput("give a bundle name or --all, not both")
    workspace = open_workspace()
    uuids: list[str] | None = None
    if not all_contexts:
        context_name = require_context(context)
        if name is not None:
            uuids = [operations.resolve(workspace, context_name, name).uuid]
        else:
            uuids = [record.uuid for record in operations.search(workspace, context_name)]
    checked = 0

    with verify_progress() as bar:

        def progress(done: int, total: int) -> None:
            nonlocal checked
            checked = total
            bar(done, total)

        problems = maintenance.verify(workspace, uuids, progress)

    if not problems:
        out.emit({"files_verified": checked, "problems": []}, f"all {checked} files verified")
        return
    if repair:
        _repaired(out, workspace, problems, checked)
        return
    if not out.json:
        result = table("context", "bundle", "path", "blob", "problem")
        for problem in problems:
            result.add_row(
                cell(problem.context),
                cell(f"{problem.bundle_name}@{short(problem.bundle_uuid)}"),
                cell(problem.path),
                cell(short(problem.blob_hash, 12)),
                cell(problem.problem),
            )
        out.console.print(result)
    raise VerificationFailed(
        _failure_message(problems, checked),
        {"files_verified": checked, "problems": [_problem_dict(p) for p in problems]},
    )


def _repaired(
    out: Output, workspace: Workspace, problems: list[VerifyProblem], checked: int
) -> None:
    report: RepairReport = maintenance.repair(workspace, problems)
    payload = {
        "files_verified": checked,
        "problems": [_problem_dict(p) for p in problems],
        "restored": list(report.restored),
        "remaining": [_problem_dict(p) for p in report.remaining],
    }
    if not report.remaining:
        out.emit(
            payload,
            f"restored {len(report.restored)} blob(s) from remotes; all {checked} files "
            "are intact now",
        )
        return
    damaged = sorted(
        {f"{p.context}/{p.bundle_name}@{short(p.bundle_uuid)}" for p in report.remaining}
    )
    if not out.json:
        out.console.print(
            f"restored {len(report.restored)} blob(s) from remotes; still damaged:", markup=False
        )
        result = table("context", "bundle", "path", "blob", "problem")
        for problem in report.remaining:
            result.add_row(
                cell(problem.context),
                cell(f"{problem.bundle_name}@{short(problem.bundle_uuid)}"),
                cell(problem.path),
                cell(short(problem.blob_hash, 12)),
                cell(problem.problem),
            )
        out.console.print(result)
    raise VerificationFailed(
        f"restored {len(report.restored)} blob(s); {len(report.remaining)} file(s) remain "
        f"damaged (no remote holds them), in bundle(s) {', '.join(damaged)}",
        {k: v for k, v in payload.items() if k != "files_verified"}
        | {"files_verified": checked, "damaged_bundles": damaged},
    )


def gc(
    ctx: typer.Context,
    grace: Annotated[
        float,
        typer.Option(
            "--grace",
            metavar="SECONDS",
            min=0,
            help="Keep unreferenced blobs younger than this many seconds (unless --force).",
        ),
    ] = maintenance.DEFAULT_GC_GRACE_SECONDS,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Also remove young blobs, and more than half of the store's blobs.",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be removed; remove nothing.")
    ] = False,
    repack: Annotated[
        bool,
        typer.Option("--repack", help="Also move loose small blobs into pack files."),
    ] = False,
    context: ContextOption = None,
    json_output: JsonOption = False,
) -> None:
    """Remove blobs no bundle references, stale temp files and views of removed bundles.

    Blobs are shared by every context, so gc is store-wide; --context only names a context
    that must exist. It refuses (exit 4) when the store and catalog are not a pair, or
    to remove more than half of the blobs without --force.
    """
    out = Output.of(ctx)
    workspace = open_workspace()
    if context is not None:
        with workspace.read() as conn:
            operations.require_context(conn, context)
    report = maintenance.gc(workspace, grace, force=force, dry_run=dry_run, repack=repack)
    refuse = dry_run and not force and 2 * len(report.blobs) > report.blobs_total
    out.emit(_gc_payload(report, refuse), lambda console: _gc_text(console, report, grace, refuse))


def _gc_payload(report: GcReport, would_refuse: bool) -> dict[str, object]:
    payload: dict[str, object] = {
        "dry_run": report.dry_run,
        "blobs_removed": report.blobs_removed,
        "bytes_freed": report.bytes_freed,
        "temp_files_removed": report.temp_files_removed,
        "views_removed": report.views_removed,
        "staging_removed": report.staging_removed,
        "blobs_kept_in_grace": report.blobs_kept_in_grace,
        "blobs_total": report.blobs_total,
        "blobs": [{"blob_hash": h, "size": size} for h, size in report.blobs],
        "temp_files": list(report.temp_files),
        "views": list(report.views),
        "staging": list(report.staging),
    }
    if report.dry_run:
        payload["would_refuse"] = would_refuse
    return payload


def _gc_text(console: Console, report: GcReport, grace: float, would_refuse: bool) -> None:
    verb = "would remove" if report.dry_run else "removed"
    console.print(
        f"{verb} {report.blobs_removed} of {report.blobs_total} blob(s) "
        f"({human_size(report.bytes_freed)}), {report.temp_files_removed} temp file(s), "
        f"{report.views_removed} stale view(s) and {report.staging_removed} staging folder(s)",
        markup=False,
    )
    if report.dry_run:
        for blob_hash, size in report.blobs:
            console.print(f"  blob {blob_hash} {human_size(size)}", markup=False)
        for path in (*report.temp_files, *report.views, *report.staging):
            console.print(f"  {path}", markup=False)
        if would_refuse:
            console.print(
                "gc would refuse this without --force: it is more than half of the blobs "
                "(check 'assay doctor')",
                markup=False,
            )
    if report.blobs_kept_in_grace:
        console.print(
            f"kept {report.blobs_kept_in_grace} unreferenced blob(s) younger than "
            f"{grace:g} s (an add may be using them; --force removes them)",
            markup=False,
        )
