"""``assay apply module:Task``: run (or plan) a pipeline, with progress on the terminal.

The face calls the pipelines domain directly (``apply_pipeline``, ``plan_pipeline``): the seed
API's ``apply`` returns only Disdat's ``{"success", "did_work"}``, and the command shows every
task's outcome and the plan's reasons.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from assay import api
from assay.bundles.workspace import open_workspace
from assay.cli.output import Output, cell, make_console, short, table
from assay.cli.session import ContextOption, JsonOption, parse_tags, require_context
from assay.core.errors import InvalidInput, TaskFailed
from assay.pipelines import execute
from assay.pipelines.apply import ApplyRequest, apply_pipeline, parse_cli_params, plan_pipeline
from assay.pipelines.loading import load_task_class


def _param_pairs(options: list[str] | None) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for text in options or []:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--param {text!r}: give it as name=value")
        pairs[key.strip()] = value
    return pairs


class _ProgressDisplay:
    """Tasks done / running / cached as a bar on stderr (terminal only)."""

    def __init__(self, label: str) -> None:
        self.console = make_console(stderr=True)
        self.progress: Progress | None = None
        self.task_id: Any = None
        self.label = label

    def __enter__(self) -> _ProgressDisplay:
        if self.console.is_terminal:
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self.progress.start()
            self.task_id = self.progress.add_task(self.label, total=None, detail="planning")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def __call__(self, state: execute.Progress) -> None:
        if self.progress is None:
            return
        self.progress.update(
            self.task_id,
            total=state.total,
            completed=state.done + state.cached + state.failed,
            detail=(
                f"{state.done} done, {state.running} running, {state.cached} cached"
                + (f", {state.failed} failed" if state.failed else "")
            ),
        )


def apply(
    ctx: typer.Context,
    task: Annotated[str, typer.Argument(metavar="MODULE:TASK", help="The root task class.")],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", metavar="NAME=VALUE", help="A task parameter; repeat."),
    ] = None,
    output_bundle: Annotated[
        str,
        typer.Option("--output-bundle", "-o", help="Name of the root's bundle ('-': its own)."),
    ] = "-",
    force: Annotated[bool, typer.Option("--force", help="Re-run the root task.")] = False,
    force_all: Annotated[bool, typer.Option("--force-all", help="Re-run every task.")] = False,
    workers: Annotated[int, typer.Option("--workers", "-w", help="Tasks run at once.")] = 1,
    executor: Annotated[
        str, typer.Option("--executor", help="thread (default) or subprocess.")
    ] = "thread",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would run and why; run nothing.")
    ] = False,
    env: Annotated[
        str | None,
        typer.Option("--env", metavar="NAME", help="Run as one job in this compute environment."),
    ] = None,
    input_tag: Annotated[
        list[str] | None,
        typer.Option("--input-tag", metavar="KEY=VALUE", help="Tags external inputs must have."),
    ] = None,
    output_tag: Annotated[
        list[str] | None,
        typer.Option("--output-tag", metavar="KEY=VALUE", help="Tags for the root's bundle."),
    ] = None,
    stop_grace: Annotated[
        float,
        typer.Option(
            "--stop-grace",
            metavar="SECONDS",
            help="On Ctrl-C, how long to wait for running tasks to end before marking them "
            "STOPPED.",
        ),
    ] = 5.0,
    context: ContextOption = None,
    json_output: JsonOption = False,
) -> None:
    """Run a pipeline: every task whose output is not cached, in parallel with --workers."""
    out = Output.of(ctx)
    if force and force_all:
        raise InvalidInput("give --force or --force-all, not both")
    task_class = load_task_class(task)
    request = ApplyRequest(
        context=require_context(context),
        task_class=task_class,
        params=parse_cli_params(task_class, _param_pairs(param)),
        output_bundle=output_bundle,
        input_tags=parse_tags(input_tag),
        output_tags=parse_tags(output_tag),
        force=force,
        force_all=force_all,
        workers=workers,
        executor=executor,
        environment=env or "local",
        grace_s=stop_grace,
    )
    workspace = open_workspace()
    if dry_run:
        _show_plan(out, plan_pipeline(workspace, request))
        return
    if env is not None:
        result = api.run(
            request.context,
            task_class,
            request.params,
            output_bundle,
            request.input_tags,
            request.output_tags,
            force,
            force_all,
            workers,
            compute_environment=env,
            executor=executor,
        )
        out.emit(result, f"job {result['job_id']} in environment {env!r}: {result['state']}")
        return
    try:
        with _ProgressDisplay(task_class.task_family()) as display:
            report = apply_pipeline(workspace, request, progress=None if out.json else display)
    except TaskFailed as failure:
        if not out.json and failure.details.get("traceback"):
            sys.stderr.write(str(failure.details["traceback"]))
        raise
    _show_report(out, report)


def _show_plan(out: Output, decisions: list[Any]) -> None:
    rows = [
        {
            "task": d.node.label,
            "bundle_name": d.node.bundle_name,
            "action": d.action,
            "reason": d.reason,
            "processing_name": d.processing_name,
            "cached_uuid": d.output.uuid if d.output else None,
        }
        for d in decisions
    ]

    def render(console: Console) -> None:
        grid = table("TASK", "BUNDLE", "ACTION", "WHY / CACHED AS")
        for row in rows:
            why = row["reason"] or f"{row['bundle_name']}@{short(row['cached_uuid'])}"
            grid.add_row(
                cell(row["task"]), cell(row["bundle_name"]), cell(row["action"]), cell(why)
            )
        console.print(grid)
        runs = sum(1 for row in rows if row["action"] == "run")
        console.print(Text(f"{runs} to run, {len(rows) - runs} cached"))

    out.emit({"plan": rows}, render)


def _show_report(out: Output, report: execute.RunReport) -> None:
    counts = report.counts()
    payload = {
        "success": report.success,
        "did_work": report.did_work,
        "output_bundle_uuid": report.root_uuid,
        "counts": counts,
        "tasks": [o.as_dict() for o in report.outcomes],
    }

    def render(console: Console) -> None:
        ran = [o for o in report.outcomes if o.status == "ran"]
        if ran and len(ran) <= 50:
            grid = table("TASK", "BUNDLE", "WHY", "UUID", "SECONDS")
            for o in ran:
                grid.add_row(
                    cell(o.label),
                    cell(o.bundle_name),
                    cell(o.reason),
                    cell(short(o.uuid)),
                    cell(o.seconds),
                )
            console.print(grid)
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        root = f"; output {short(report.root_uuid)}" if report.root_uuid else ""
        console.print(Text(f"done: {summary}{root}"))

    out.emit(payload, render)
