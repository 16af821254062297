"""``assay jobs ls | status | logs [--follow] | events | stop | fsm`` and ``assay env ls``.

Read commands reconcile first (a job whose supervisor died shows FAILED, never RUNNING
forever). ``logs --follow --json`` writes one JSON document per line (one per log event) until
the job ends; every other ``--json`` output is one document.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Any

import typer
from rich.console import Console

from assay.cli.output import (
    Output,
    cell,
    iso_time,
    key_value_table,
    local_time,
    short,
    table,
    write_json,
)
from assay.cli.session import JsonOption
from assay.core.errors import InvalidInput
from assay.jobs import store
from assay.jobs.env_status import environment_statuses
from assay.jobs.fsm import machine_for
from assay.jobs.reconcile import reconcile, reconcile_job
from assay.jobs.records import JobEvent, JobRecord

jobs_app = typer.Typer(
    rich_markup_mode=None,
    name="jobs",
    help="Jobs of every kind (compute, questions, pipeline tasks): list, inspect, follow, stop.",
    no_args_is_help=True,
)
env_app = typer.Typer(
    rich_markup_mode=None, name="env", help="Compute environments.", no_args_is_help=True
)

JobArgument = Annotated[
    str, typer.Argument(metavar="JOB_ID", help="A job id or unique prefix.", show_default=False)
]
FORMATS = ("mermaid", "dot", "json", "markdown")


def job_dict(record: JobRecord) -> dict[str, Any]:
    document = record.as_dict()
    for key in ("created", "updated", "started", "finished", "last_seen"):
        document[key] = iso_time(document[key])
    document.pop("launch", None)  # may hold the job's environment variables
    return document


def event_dict(event: JobEvent) -> dict[str, Any]:
    return {**event.as_dict(), "at": iso_time(event.at)}


def _took(record: JobRecord) -> str:
    if record.started is None:
        return ""
    end = record.finished if record.finished is not None else time.time()
    return f"{end - record.started:.2f} s"


@jobs_app.command("ls")
def jobs_ls(
    ctx: typer.Context,
    kind: Annotated[str | None, typer.Option("--kind", help="Only this kind.")] = None,
    state: Annotated[str | None, typer.Option("--state", help="Only this state.")] = None,
    environment: Annotated[str | None, typer.Option("--env", help="Only this environment.")] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="Only this owner.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")] = 50,
    after: Annotated[
        str | None, typer.Option("--after", help="Continue after this job id (paging).")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """List jobs, newest first."""
    out = Output.of(ctx)
    reconcile()
    records = store.list_jobs(
        kind=kind,
        state=state.upper() if state else None,
        environment=environment,
        owner=owner,
        limit=limit,
        after=after,
    )

    def render(console: Console) -> None:
        if not records:
            console.print("no jobs")
            return
        result = table("job", "kind", "state", "env", "owner", "created", "took")
        for record in records:
            result.add_row(
                cell(short(record.job_id)),
                cell(record.kind),
                cell(record.state),
                cell(record.environment),
                cell(record.owner),
                cell(local_time(record.created)),
                cell(_took(record)),
            )
        console.print(result)

    out.emit([job_dict(record) for record in records], render)


@jobs_app.command("status")
def jobs_status(ctx: typer.Context, job: JobArgument, json_output: JsonOption = False) -> None:
    """Show one job: state, times, error, result."""
    out = Output.of(ctx)
    record = store.get_job(job)
    if reconcile_job(record.job_id) is not None:
        record = store.get_job(record.job_id)
    rows = [
        ("job", record.job_id),
        ("kind", record.kind),
        ("state", f"{record.state} ({record.state_code})"),
        ("environment", record.environment),
        ("owner", record.owner),
        ("created", local_time(record.created)),
        ("started", local_time(record.started)),
        ("finished", local_time(record.finished)),
        ("took", _took(record)),
        ("last seen", local_time(record.last_seen)),
        ("supervisor", f"{record.pid} on {record.host}" if record.pid else ""),
        ("workdir", record.workdir or ""),
        ("stop requested", "yes" if record.stop_requested else ""),
        ("parent", record.parent_job_id or ""),
        ("error", record.error or ""),
        ("result", "" if record.result is None else record.result),
    ]
    out.emit(job_dict(record), key_value_table(rows))


def _log_line(event: JobEvent) -> str:
    payload = event.payload
    level = payload.get("level")
    prefix = f"[{level}] " if level and level != "info" else ""
    return prefix + str(payload.get("message", ""))


@jobs_app.command("logs")
def jobs_logs(
    ctx: typer.Context,
    job: JobArgument,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until the job ends.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Print a job's log lines (its own log events and its process's output)."""
    out = Output.of(ctx)
    job_id = store.get_job(job).job_id
    if not follow:
        events = store.list_events(job_id, types=["log"])

        def render(console: Console) -> None:
            for event in events:
                console.out(_log_line(event), highlight=False)

        out.emit([event_dict(e) for e in events], render)
        return
    last_check = [time.monotonic()]

    def idle(record: Any) -> None:
        if time.monotonic() - last_check[0] >= 1.0:  # a job whose supervisor died ends
            last_check[0] = time.monotonic()
            reconcile_job(record.job_id)

    for event in store.follow_events(job_id, poll_s=0.1, idle=idle):
        if event.type != "log":
            continue
        if out.json:
            write_json_line(event_dict(event))
        else:
            out.console.out(_log_line(event), highlight=False)


def write_json_line(document: Any) -> None:
    sys.stdout.write(json.dumps(document, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


@jobs_app.command("events")
def jobs_events(
    ctx: typer.Context,
    job: JobArgument,
    type_: Annotated[
        list[str] | None,
        typer.Option("--type", "-t", help="Only events of this type; repeat for several."),
    ] = None,
    after_seq: Annotated[int, typer.Option("--after-seq", min=0, help="Only after this seq.")] = 0,
    json_output: JsonOption = False,
) -> None:
    """List a job's events in order: transitions, logs, monitor messages, stop requests."""
    out = Output.of(ctx)
    job_id = store.get_job(job).job_id
    found = store.list_events(job_id, after_seq=after_seq, types=type_)

    def render(console: Console) -> None:
        result = table("seq", "time", "type", "event", "")
        for event in found:
            if event.type == "transition":
                detail = f"{event.from_state or ''} -> {event.to_state}"
                if event.payload.get("error"):
                    detail += f": {event.payload['error']}"
            elif event.type == "log":
                detail = _log_line(event)
            else:
                detail = str(event.payload)
            result.add_row(
                cell(event.seq),
                cell(local_time(event.at)),
                cell(event.type),
                cell(event.event),
                cell(detail[:300]),
            )
        console.print(result)

    out.emit([event_dict(e) for e in found], render)


@jobs_app.command("stop")
def jobs_stop(ctx: typer.Context, job: JobArgument, json_output: JsonOption = False) -> None:
    """Ask a job to stop (from any process). A job not started yet stops at once."""
    out = Output.of(ctx)
    record = store.request_stop(job)
    message = (
        f"job {short(record.job_id)} is {record.state}"
        if record.terminal
        else f"stop requested for job {short(record.job_id)} ({record.state}); its supervisor ends it"
    )
    out.emit(job_dict(record), message)


@jobs_app.command("reconcile")
def jobs_reconcile(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """End or re-queue lost jobs: dead local supervisors, and jobs of dask environments their
    scheduler no longer holds (or whose scheduler is gone)."""
    from assay.jobs.executors.dask import reconcile_dask

    out = Output.of(ctx)
    changed = reconcile() + reconcile_dask()
    out.emit(
        [job_dict(record) for record in changed],
        "\n".join(f"job {short(r.job_id)} -> {r.state}" for r in changed) or "nothing to do",
    )


@jobs_app.command("fsm")
def jobs_fsm(
    ctx: typer.Context,
    kind: Annotated[
        str, typer.Option("--kind", help="The state machine to show (default: the job machine).")
    ] = "job",
    format_: Annotated[
        str, typer.Option("--format", help="mermaid | dot | json | markdown.")
    ] = "mermaid",
    json_output: JsonOption = False,
) -> None:
    """Print a job state machine as a Mermaid or Graphviz diagram (or JSON, a Markdown table)."""
    out = Output.of(ctx)
    if format_ not in FORMATS:
        raise InvalidInput(f"--format {format_!r}: use one of {', '.join(FORMATS)}")
    machine = machine_for(kind)
    if out.json or format_ == "json":
        write_json(machine.as_dict())
        return
    text = {"mermaid": machine.to_mermaid, "dot": machine.to_dot, "markdown": machine.states_table}[
        format_
    ]()
    typer.echo(text, nl=False)


@env_app.command("ls")
def env_ls(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """List compute environments: status, running and queued jobs, last heartbeat."""
    out = Output.of(ctx)
    statuses = environment_statuses()

    def render(console: Console) -> None:
        result = table(
            "env",
            "executor",
            "status",
            "running",
            "queued",
            "max",
            "isolation",
            "network",
            "price/min",
            "last seen",
            "workers",
            "threads",
            "memory",
        )
        for item in statuses:
            env = item.environment
            dask = item.cluster or {}
            memory = dask.get("memory_bytes")
            result.add_row(
                cell(env.id),
                cell(env.executor),
                cell(item.status),
                cell(item.running),
                cell(item.queued),
                cell(env.max_jobs),
                cell(env.isolation),
                cell("yes" if env.network else "no"),
                cell(f"{env.price_min:g}"),
                cell(local_time(item.last_seen)),
                cell(dask.get("workers")),
                cell(dask.get("threads")),
                cell(f"{memory / 1e9:.1f} GB" if memory else None),
            )
        console.print(result)

    out.emit(
        [{**item.as_dict(), "last_seen": iso_time(item.last_seen)} for item in statuses], render
    )
