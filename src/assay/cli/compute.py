"""Compute-to-data commands: ``assay publish``, ``assay services show`` and
``assay jobs start | results | get`` (added to the job layer's ``jobs`` group by ``register_jobs``).

The CLI calls the ``assay.compute`` face and, for publishing and service identity, the compute
jobs domain directly (the face has no publish call in Ocean's API).
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from assay.cli.output import Output, cell, human_size, local_time, table
from assay.cli.session import ContextOption, JsonOption, json_option, require_context
from assay.core.errors import InvalidInput

services_app = typer.Typer(
    rich_markup_mode=None,
    name="services",
    help="Registered services: show one's code hash.",
    no_args_is_help=True,
)


def _me() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "local"


ConsumerOption = Annotated[
    str | None,
    typer.Option(
        "--consumer",
        metavar="ID",
        help="The consumer's id (default: your user name).",
        show_default=False,
    ),
]


# -- publish ----------------------------------------------------------------------------------
def publish(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The bundle name to publish.")],
    access: Annotated[
        str,
        typer.Option("--access", help="download (files readable) or compute (files stay in jobs)."),
    ],
    trust: Annotated[
        list[str] | None,
        typer.Option(
            "--trust",
            metavar="SRUID[@CODEHASH]",
            help="Trust a service (its code hash is pinned now), assay://ctx/name of an "
            "algorithm bundle, or '*'. Repeat for several.",
            show_default=False,
        ),
    ] = None,
    trust_publisher: Annotated[
        list[str] | None,
        typer.Option(
            "--trust-publisher",
            metavar="ID",
            help="Trust every algorithm of ID.",
            show_default=False,
        ),
    ] = None,
    allow_raw_algorithm: Annotated[
        bool, typer.Option("--allow-raw-algorithm", help="Let raw (unpublished) code run.")
    ] = False,
    allow_network: Annotated[
        bool, typer.Option("--allow-network", help="Let jobs run in networked environments.")
    ] = False,
    allow_consumer: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-consumer",
            metavar="ID",
            help="Only these consumers (default: everyone, '*').",
            show_default=False,
        ),
    ] = None,
    deny_consumer: Annotated[
        list[str] | None,
        typer.Option(
            "--deny-consumer", metavar="ID", help="Never these consumers.", show_default=False
        ),
    ] = None,
    disable: Annotated[bool, typer.Option("--disable", help="Refuse every job for now.")] = False,
    context: ContextOption = None,
    json_output: JsonOption = False,
) -> None:
    """Publish a bundle name for download or compute-to-data; prints the pinned code hashes."""
    # the domain directly: Ocean's compute face has no publish call to wrap
    from assay.computejobs.trust import publish_dataset

    out = Output.of(ctx)
    policy = publish_dataset(
        require_context(context),
        name,
        access,
        trust=list(trust or []),
        trust_publishers=list(trust_publisher or []),
        allow_raw_algorithm=allow_raw_algorithm,
        allow_network=allow_network,
        allow_consumers=list(allow_consumer) if allow_consumer else ["*"],
        deny_consumers=list(deny_consumer or []),
        disabled=disable,
        publisher=_me(),
    )

    lines = [f"published {policy.context}/{policy.name} for {policy.access} access"]
    for entry in policy.trusted_algorithms:
        lines.append(f"  trusts {entry.id} with code hash {entry.code_hash or '(any code)'}")
    lines += [f"  trusts publisher {publisher}" for publisher in policy.trusted_publishers]
    if policy.allow_raw_algorithm:
        lines.append("  allows raw algorithms")

    def render(console: Console) -> None:
        for line in lines:  # hashes stay on one line, whatever the terminal width
            console.print(line, soft_wrap=True, markup=False, highlight=False)

    out.emit(policy.to_primitive(), render)


# -- services show ----------------------------------------------------------------------------
@services_app.command("show")
def services_show(
    ctx: typer.Context,
    sruid: Annotated[str, typer.Argument(metavar="SRUID", help="namespace/name[:tag]")],
    json_output: JsonOption = False,
) -> None:
    """Show a registered service's folder and current code hash."""
    # the domain directly: a service's code hash is not part of the compute face
    from assay.computejobs.trust import describe_service

    out = Output.of(ctx)
    found = describe_service(sruid)

    def render(console: Console) -> None:
        for line in (
            found["service"],
            f"  folder     {found['folder']}",
            f"  code hash  {found['code_hash']}",
        ):
            console.print(line, soft_wrap=True, markup=False, highlight=False)

    out.emit(found, render)


# -- jobs start | results | get ---------------------------------------------------------------
def _dataset_ref(text: str, context: str | None) -> str:
    return text if "://" in text else f"assay://{require_context(context)}/{text}"


def jobs_start(
    ctx: typer.Context,
    dataset: Annotated[
        str, typer.Argument(metavar="DATASET", help="A bundle name or assay://ctx/name[@uuid].")
    ],
    algorithm: Annotated[
        str | None,
        typer.Option(
            "--algorithm",
            "-a",
            metavar="ID",
            help="A service id or assay://ctx/name of an algorithm bundle.",
            show_default=False,
        ),
    ] = None,
    raw: Annotated[
        Path | None,
        typer.Option(
            "--raw", metavar="FILE", help="Run this script as a raw algorithm.", show_default=False
        ),
    ] = None,
    entrypoint: Annotated[
        str, typer.Option("--entrypoint", help="How to run --raw; $ALGO is the script.")
    ] = "python $ALGO",
    environment: Annotated[
        str, typer.Option("--env", "-e", metavar="ENV", help="The compute environment.")
    ] = "local",
    additional: Annotated[
        list[str] | None,
        typer.Option(
            "--additional", metavar="DATASET", help="Another dataset; repeat.", show_default=False
        ),
    ] = None,
    custom_data: Annotated[
        str | None,
        typer.Option(
            "--custom-data",
            metavar="JSON|@FILE",
            help="Written to inputs/algoCustomData.json.",
            show_default=False,
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Re-run a finished job.")] = False,
    consumer: ConsumerOption = None,
    context: ContextOption = None,
    json_output: JsonOption = False,
) -> None:
    """Start a compute job and wait for it to end (it runs under this process)."""
    from assay.compute import Compute

    out = Output.of(ctx)
    meta = None
    if raw is not None:
        try:
            code = raw.read_text(encoding="utf-8")
        except OSError as error:
            raise InvalidInput(f"--raw: cannot read {raw}: {error.strerror}") from None
        meta = {"rawcode": code, "language": "python", "container": {"entrypoint": entrypoint}}
    who = consumer or _me()
    compute = Compute()
    job_id = compute.start(
        who,
        _dataset_ref(dataset, context),
        environment,
        algorithm=algorithm,
        algorithm_meta=meta,
        algorithm_algocustomdata=json_option(custom_data, "--custom-data"),
        additional_datasets=[_dataset_ref(d, context) for d in additional or []],
        force=force,
    )
    if not out.json and sys.stderr.isatty():  # a note for people; pipes stay quiet on success
        sys.stderr.write(f"job {job_id} started; waiting for it to end\n")
    try:
        status = compute.wait(job_id, who)
    except KeyboardInterrupt:
        # The job runs under this process: stop it rather than leave it to die with us.
        compute.stop(job_id, who)
        compute.wait(job_id, who, timeout=30)
        raise

    def render(console: Console) -> None:
        console.print(f"job {job_id}: {status['state']} ({status['statusText']})")
        if status["error"]:
            console.print(f"  error: {status['error']}")
        _results_table(console, status["results"])

    out.emit(status, render)
    if not status["ok"]:
        raise typer.Exit(1)


def _results_table(console: Console, results: list[dict[str, Any]]) -> None:
    if not results:
        console.print("no results")
        return
    shown = table("index", "type", "file", "size")
    for item in results:
        shown.add_row(
            cell(item["index"]),
            cell(item["type"]),
            cell(item["filename"]),
            cell(human_size(item["filesize"])),
        )
    console.print(shown)


def jobs_results(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="JOB", help="Job id (or unique prefix).")],
    consumer: ConsumerOption = None,
    json_output: JsonOption = False,
) -> None:
    """List a compute job's results by index (outputs, then logs)."""
    from assay.compute import Compute

    out = Output.of(ctx)
    status = Compute().status(job_id, consumer or _me())

    def render(console: Console) -> None:
        finished = local_time(status["dateFinished"]) if status["dateFinished"] else "-"
        console.print(f"job {status['jobId']}: {status['state']} (finished {finished})")
        _results_table(console, status["results"])

    out.emit(status["results"], render)


def jobs_get(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="JOB", help="Job id (or unique prefix).")],
    index: Annotated[int, typer.Argument(metavar="INDEX", help="Result index (jobs results).")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write it here instead of stdout.",
            show_default=False,
        ),
    ] = None,
    consumer: ConsumerOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print one result of a compute job (or write it to --output)."""
    from assay.compute import Compute

    out = Output.of(ctx)
    item = Compute().result(job_id, index, consumer or _me())
    data = Path(item["path"]).read_bytes()
    if output is not None:
        output.write_bytes(data)
    if out.json:
        out.emit({**item, "written_to": str(output) if output else None})
    elif output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


def register_jobs(group: typer.Typer) -> None:
    """Add ``start``, ``results`` and ``get`` to the ``jobs`` command group."""
    group.command("start")(jobs_start)
    group.command("results")(jobs_results)
    group.command("get")(jobs_get)
