"""``assay init service``, ``assay run`` and ``assay questions ls | events | replay``."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from assay.cli.output import Output, cell, iso_time, local_time, one_line, short, table
from assay.cli.session import JsonOption
from assay.core.errors import AssayError, ChildError, InvalidInput
from assay.core.manifest import Manifest
from assay.core.names import check_context_name
from assay.services.outputs import OUTPUT_CONTEXT_VARIABLE

init_app = typer.Typer(
    rich_markup_mode=None,
    name="init",
    help="Make new things: a service folder.",
    no_args_is_help=True,
)
questions_app = typer.Typer(
    rich_markup_mode=None,
    name="questions",
    help="Questions asked to services: list them, their events, replay one.",
    no_args_is_help=True,
)


# -- init -------------------------------------------------------------------------------------
@init_app.command("service")
def init_service(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The service's name (a-z, 0-9, -).")],
    namespace: Annotated[
        str, typer.Option("--namespace", "-n", help="The service's namespace.")
    ] = "local",
    path: Annotated[
        Path | None,
        typer.Option("--path", help="Folder to create (default: ./NAME).", show_default=False),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Scaffold a service: app.py, twine.json, assay.yaml, a test, a README and a Dockerfile."""
    from assay.services.scaffold import init_service as scaffold

    out = Output.of(ctx)
    folder = scaffold(name, path, namespace)
    files = sorted(p.name for p in folder.iterdir())
    out.emit(
        {"service": f"{namespace}/{name}:0.1.0", "folder": str(folder), "files": files},
        f"created service {namespace}/{name}:0.1.0 in {folder} ({', '.join(files)}); try: "
        f"cd {folder} && assay run --input-values '{{\"n\": 21}}'",
    )


# -- build ------------------------------------------------------------------------------------
def build(
    ctx: typer.Context,
    target: Annotated[
        Path,
        typer.Argument(
            metavar="SERVICE_OR_PIPELINE", help="A service folder, pipeline folder or module."
        ),
    ],
    tag: Annotated[
        str | None, typer.Option("--tag", "-t", help="Image tag (default: assay-NAME:latest).")
    ] = None,
    engine: Annotated[
        str | None, typer.Option("--engine", help="docker or podman (default: whichever is found).")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Build a worker image (Dockerfile written when the folder has none) with docker/podman."""
    from assay.services.images import build_image

    out = Output.of(ctx)
    plan = build_image(target, tag, engine)
    out.emit(
        {"tag": plan.tag, "dockerfile": str(plan.dockerfile), "kind": plan.kind},
        f"built {plan.tag} from {plan.dockerfile}",
    )


# -- run --------------------------------------------------------------------------------------
def _json_option(text: str, option: str) -> Any:
    source = text
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            source = path.read_text(encoding="utf-8")
        except OSError as error:
            raise InvalidInput(f"{option}: cannot read {path}: {error.strerror or error}") from None
    try:
        return json.loads(source)
    except json.JSONDecodeError as error:
        raise InvalidInput(f"{option}: not valid JSON: {error}") from None


def _manifest_option(text: str) -> Manifest:
    path = Path(text[1:] if text.startswith("@") else text)
    return Manifest.from_json(path)


class _StderrLogs(logging.Handler):
    """Shows the service's log records (re-emitted from the child), nothing else."""

    def filter(self, record: logging.LogRecord) -> bool:
        return hasattr(record, "assay_question")

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def run(
    ctx: typer.Context,
    input_values: Annotated[
        str | None,
        typer.Option(
            "--input-values",
            "-i",
            metavar="JSON|@FILE",
            help="Input values: JSON, or @file.",
            show_default=False,
        ),
    ] = None,
    input_manifest: Annotated[
        str | None,
        typer.Option(
            "--input-manifest",
            "-m",
            metavar="@FILE",
            help="An input manifest file (Octue's form; relative paths from the file).",
            show_default=False,
        ),
    ] = None,
    service_config: Annotated[
        Path,
        typer.Option("--service-config", help="The service config file or its folder."),
    ] = Path("."),
    service: Annotated[
        str | None,
        typer.Option(
            "--service", help="Which service, when the config defines several.", show_default=False
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout", min=0.001, help="Seconds to wait for the answer.", show_default=False
        ),
    ] = None,
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="Do not show the service's log records or traceback."),
    ] = False,
    context: Annotated[
        str | None,
        typer.Option(
            "--context",
            "-c",
            metavar="NAME",
            help="Commit output datasets to this context (default: the service's "
            "output_location, else 'services').",
            show_default=False,
        ),
    ] = None,
    environment: Annotated[
        str | None,
        typer.Option(
            "--env",
            "-e",
            metavar="ENV",
            help="Answer in this compute environment (executor: dask runs it on the cluster).",
            show_default=False,
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Run the service in this folder (or --service-config) as a question, and print the answer.

    The app runs in its own process (with --env on an executor: dask environment, as a task on
    a Dask worker); its log records are shown on stderr. Outputs are validated against the twine
    and output datasets committed as bundles (see docs/services.md, docs/scale-out.md).
    """
    from assay.services.child import Child
    from assay.services.config import load_config, select_service

    out = Output.of(ctx)
    values = _json_option(input_values, "--input-values") if input_values is not None else None
    manifest = _manifest_option(input_manifest) if input_manifest is not None else None
    config = select_service(load_config(service_config), service, service_config.absolute())
    previous_output_context = os.environ.get(OUTPUT_CONTEXT_VARIABLE)
    if context is not None:
        # The worker reads it when committing outputs (it gets this process's environment).
        os.environ[OUTPUT_CONTEXT_VARIABLE] = check_context_name(context)
    handler: logging.Handler | None = None
    root = logging.getLogger()
    previous_level = root.level
    if not quiet:
        handler = _StderrLogs()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        root.addHandler(handler)
        if root.getEffectiveLevel() > logging.INFO:
            root.setLevel(logging.INFO)
    try:
        backend = {"name": "local", "path": str(config.source)}
        if environment is not None:
            backend["environment"] = environment
        child = Child(config.sruid, backend=backend)
        answer, question_uuid = child.ask(
            input_values=values,
            input_manifest=manifest,
            allow_local_files=True,
            timeout=timeout,
        )
    except AssayError as error:
        raise _app_failure(error, config.sruid, show_traceback=not (quiet or out.json)) from None
    finally:
        if handler is not None:
            root.removeHandler(handler)
            root.setLevel(previous_level)
        if context is not None:  # leave the environment as found (the CLI runs in tests too)
            if previous_output_context is None:
                os.environ.pop(OUTPUT_CONTEXT_VARIABLE, None)
            else:
                os.environ[OUTPUT_CONTEXT_VARIABLE] = previous_output_context
    output_manifest = answer["output_manifest"]
    payload = {
        "question_uuid": question_uuid,
        "service_id": config.sruid,
        "output_values": answer["output_values"],
        "output_manifest": output_manifest.serialise() if output_manifest else None,
    }

    def render(console: Console) -> None:
        console.print(f"question {question_uuid} answered by {config.sruid}", highlight=False)
        console.print("output values:", highlight=False)
        console.print(json.dumps(answer["output_values"], indent=2), highlight=False)
        if output_manifest is not None:
            console.print("output datasets:", highlight=False)
            for key, reference in output_manifest.references.items():
                console.print(f"  {key}: {reference.uri or '(dataset)'}", highlight=False)

    out.emit(payload, render)


def _app_failure(error: AssayError, sruid: str, show_traceback: bool) -> AssayError:
    """The error ``assay run`` reports for a failed question, with the app's traceback: on
    stderr above the error line (text output, unless ``--quiet``) and as ``traceback`` in the
    JSON error. A validation error (bad input, or output that breaks the twine: exit 8) says
    all there is to say: its traceback runs through Assay's checks, not the app, so it is left
    out (``assay questions events`` keeps it)."""
    child_type = getattr(error, "child_type", None)
    question_uuid = getattr(error, "question_uuid", None)
    trace = str(getattr(error, "child_traceback", "") or "")
    reported = error
    if (
        child_type
        and isinstance(error, ChildError)
        and not type(error).__module__.startswith("assay.")
    ):
        reported = ChildError(
            f"{sruid}: the app raised {child_type}: {error} (question {question_uuid or '?'}; "
            "see 'assay questions events')",
            details={"question_uuid": question_uuid},
        )
    if trace and not isinstance(error, InvalidInput):
        reported.details.setdefault("question_uuid", question_uuid)
        reported.details["traceback"] = trace
        if show_traceback:
            sys.stderr.write(
                f"traceback of the app (question {question_uuid}):\n{trace.rstrip()}\n"
            )
    return reported


# -- questions --------------------------------------------------------------------------------
def _question_dict(record: Any) -> dict[str, Any]:
    return {
        "question_uuid": record.question_uuid,
        "parent_question_uuid": record.parent_question_uuid,
        "originator_question_uuid": record.originator_question_uuid,
        "service_id": record.service_id,
        "backend": record.backend,
        "status": record.status,
        "created": iso_time(record.created),
        "finished": iso_time(record.finished),
        "input_values": record.input_values,
        "output_values": record.output_values,
        "error": record.error,
    }


def _event_dict(event: Any) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "kind": event.kind,
        "at": iso_time(event.at),
        "payload": event.payload,
    }


def _duration(record: Any) -> str:
    if record.finished is None:
        return ""
    return f"{record.finished - record.created:.2f} s"


@questions_app.command("ls")
def questions_ls(
    ctx: typer.Context,
    service: Annotated[
        str | None,
        typer.Option(
            "--service",
            "-s",
            metavar="NS/NAME[:TAG]",
            help="Only this service.",
            show_default=False,
        ),
    ] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="Only this status.", show_default=False)
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")] = 50,
    context: Annotated[
        str | None,
        typer.Option(
            "--context",
            "-c",
            metavar="NAME",
            help="Only questions whose output datasets are bundles in this context.",
            show_default=False,
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """List questions asked to services, newest first."""
    from assay import api
    from assay.services import events

    out = Output.of(ctx)
    if context is None:
        records = events.list_questions(service_id=service, status=status, limit=limit)
    else:
        asked = {b.tags.get("question_uuid") for b in api.search(context)} - {None}
        every = events.list_questions(service_id=service, status=status, limit=None)
        records = [record for record in every if record.question_uuid in asked][:limit]

    def render(console: Console) -> None:
        if not records:
            console.print("no questions yet: ask one with 'assay run' or Child(...).ask()")
            return
        result = table("question", "service", "status", "created", "took", "parent")
        for record in records:
            result.add_row(
                cell(short(record.question_uuid)),
                cell(record.service_id),
                cell(record.status),
                cell(local_time(record.created)),
                cell(_duration(record)),
                cell(short(record.parent_question_uuid)),
            )
        console.print(result)

    out.emit([_question_dict(record) for record in records], render)


def _summary(event: Any) -> str:
    payload = event.payload
    if event.kind == "log_record":
        return f"{payload.get('levelname', '')} {payload.get('name', '')}: {payload.get('message', '')}"
    if event.kind == "monitor_message":
        return json.dumps(payload.get("data"))[:200]
    if event.kind == "exception":
        return f"{payload.get('type')}: {payload.get('message')}"
    if event.kind == "result":
        return "output_values=" + json.dumps(payload.get("output_values"))[:200]
    if event.kind == "question":
        return str(payload.get("service_id", ""))
    if event.kind == "delivery":
        return f"worker pid {payload.get('pid')}"
    return ""


QuestionArgument = Annotated[
    str,
    typer.Argument(
        metavar="QUESTION_UUID", help="A question uuid or unique prefix.", show_default=False
    ),
]


@questions_app.command("events")
def questions_events(
    ctx: typer.Context,
    question: QuestionArgument,
    kind: Annotated[
        list[str] | None,
        typer.Option(
            "--kind", "-k", help="Only events of this kind; repeat for several.", show_default=False
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """List a question's events in order (question, delivery, heartbeat, log_record, ...)."""
    from assay.services import events

    out = Output.of(ctx)
    question_uuid = events.resolve_question(question)
    found = events.list_events(question_uuid, kind)

    def render(console: Console) -> None:
        result = table("seq", "time", "kind", "")
        for event in found:
            result.add_row(
                cell(event.seq),
                cell(local_time(event.at)),
                cell(event.kind),
                cell(_summary(event)[:300]),
            )
        console.print(result)
        for event in found:
            trace = event.payload.get("traceback") if event.kind == "exception" else None
            if trace:
                console.print(f"traceback (event {event.seq}):", highlight=False, markup=False)
                console.print(str(trace).rstrip(), highlight=False, markup=False)

    out.emit([_event_dict(event) for event in found], render)


@questions_app.command("replay")
def questions_replay(
    ctx: typer.Context, question: QuestionArgument, json_output: JsonOption = False
) -> None:
    """Replay a question from its stored events: its logs, monitor messages and outcome."""
    from assay.services import events

    out = Output.of(ctx)
    question_uuid = events.resolve_question(question)
    record = events.get_question(question_uuid)
    found = events.list_events(question_uuid)
    outcome: dict[str, Any] = {"status": record.status}
    for event in found:
        if event.kind == "result":
            outcome["answer"] = {
                "output_values": event.payload.get("output_values"),
                "output_manifest": event.payload.get("output_manifest"),
            }
        elif event.kind == "exception":
            outcome["error"] = {
                "type": event.payload.get("type"),
                "message": event.payload.get("message"),
            }
        elif event.kind == "cancelled":
            outcome["error"] = {"type": "cancelled", "message": "the question was cancelled"}

    def render(console: Console) -> None:
        prefix = f"[{record.service_id} | {question_uuid}]"
        for event in found:
            when = local_time(event.at)
            if event.kind == "log_record":
                payload = event.payload
                console.print(
                    f"{when} {payload.get('levelname', '')} {payload.get('name', '')} {prefix} "
                    f"{payload.get('message', '')}",
                    highlight=False,
                    markup=False,
                )
            elif event.kind != "heartbeat":
                console.print(
                    f"{when} {event.kind} {_summary(event)}", highlight=False, markup=False
                )
        if "answer" in outcome:
            console.print("output values:", highlight=False)
            console.print(
                json.dumps(outcome["answer"]["output_values"], indent=2),
                highlight=False,
                markup=False,
            )

    out.emit(
        {
            "question": _question_dict(record),
            "events": [_event_dict(e) for e in found],
            "outcome": outcome,
        },
        render,
    )
    failure = outcome.get("error")
    if failure is not None:
        message = (
            f"question {question_uuid} to {record.service_id} failed: {failure['type']}: "
            f"{failure['message']}"
        )
        if out.json:
            sys.stderr.write(f"error: {one_line(message)}\n")
            raise typer.Exit(ChildError.exit_code)
        raise ChildError(message)
