"""``assay verify`` and ``assay gc``: keeping the blob store honest."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from assay import api
from assay.bundles import maintenance, operations
from assay.bundles.workspace import open_workspace
from assay.cli.output import Output, cell, human_size, short, table
from assay.cli.progress import verify_progress
from assay.cli.session import ContextOption, JsonOption, require_context
from assay.core.errors import InvalidInput, VerificationFailed
from assay.core.records import VerifyProblem

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
    context: ContextOption = None,
    json_output: JsonOption = False,
) -> None:
    """Re-hash stored blobs and report any that are missing or corrupted (exit code 5)."""
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


def gc(
    ctx: typer.Context,
    grace: Annotated[
        float,
        typer.Option(
            "--grace",
            metavar="SECONDS",
            min=0,
            help="Keep unreferenced blobs and temp files younger than this many seconds.",
        ),
    ] = maintenance.DEFAULT_GC_GRACE_SECONDS,
    json_output: JsonOption = False,
) -> None:
    """Remove blobs no bundle references, stale temp files and views of removed bundles."""
    out = Output.of(ctx)
    report = api.gc(grace)

    def render(console: Console) -> None:
        console.print(
            f"removed {report.blobs_removed} unreferenced blob(s) "
            f"({human_size(report.bytes_freed)} freed), {report.temp_files_removed} temp "
            f"file(s) and {report.views_removed} stale view(s)",
            markup=False,
        )
        if report.blobs_kept_in_grace:
            console.print(
                f"kept {report.blobs_kept_in_grace} unreferenced blob(s) younger than "
                f"{grace:g} s (an add may be using them)",
                markup=False,
            )

    out.emit(
        {
            "blobs_removed": report.blobs_removed,
            "bytes_freed": report.bytes_freed,
            "temp_files_removed": report.temp_files_removed,
            "views_removed": report.views_removed,
            "blobs_kept_in_grace": report.blobs_kept_in_grace,
        },
        render,
    )
