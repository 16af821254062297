"""``assay remote add | show``, ``assay push``, ``assay pull``, ``assay localize``,
``assay delocalize`` (and the ``--remote`` side of ``assay rm``)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console

from assay import api
from assay.bundles import operations, remotes
from assay.bundles.workspace import open_workspace
from assay.cli.output import Output, human_size, key_value_table
from assay.cli.progress import LARGE_ADD_BYTES, LARGE_ADD_FILES, LazyProgress
from assay.cli.session import (
    ContextOption,
    JsonOption,
    OptionalName,
    TagOption,
    UuidOption,
    parse_tags,
    require_context,
)
from assay.core.errors import InvalidInput
from assay.core.remote_records import RemoteRemoval

remote_app = typer.Typer(
    rich_markup_mode=None,
    name="remote",
    help="Bind contexts to remotes (S3-compatible object storage, shared folders) and show them.",
    no_args_is_help=True,
)


def _progress(what: str) -> LazyProgress:
    return LazyProgress(what, unit="bytes", min_total=LARGE_ADD_BYTES, min_steps=LARGE_ADD_FILES)


@remote_app.command("add")
def add(
    ctx: typer.Context,
    remote_context: Annotated[
        str,
        typer.Argument(
            metavar="REMOTE_CONTEXT",
            help="The context's name on the remote (as Disdat's 'dsdt remote').",
            show_default=False,
        ),
    ],
    url: Annotated[
        str,
        typer.Argument(
            metavar="URL",
            help="s3://bucket/prefix, file:///path, or another fsspec URL.",
            show_default=False,
        ),
    ],
    context: ContextOption = None,
    old_remote_context: Annotated[
        str | None,
        typer.Option(
            "--remote-context",
            metavar="NAME",
            help="Older form: 'remote add LOCAL URL --remote-context NAME'.",
            show_default=False,
            hidden=True,
        ),
    ] = None,
    endpoint_url: Annotated[
        str | None,
        typer.Option(
            "--endpoint-url",
            metavar="URL",
            help="S3-compatible endpoint (default: AWS_ENDPOINT_URL or AWS itself).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a different remote already bound.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Bind the current context (or -c CONTEXT) to REMOTE_CONTEXT at URL (checked first)."""
    out = Output.of(ctx)
    local, remote_name = _binding_names(remote_context, context, old_remote_context)
    bound = remotes.bind(open_workspace(), local, remote_name, url, force, endpoint_url)
    out.emit(
        {
            "context": bound.context,
            "remote_context": bound.remote_context,
            "url": bound.url,
            "options": bound.options,
        },
        f"context {bound.context!r} is bound to remote {bound}",
    )


def _binding_names(
    remote_context: str, context: str | None, old_remote_context: str | None
) -> tuple[str, str]:
    """``(local context, remote context)`` for ``assay remote add``.

    ``remote add REMOTE_CONTEXT URL`` binds the current context (``-c`` names another), as
    Disdat's ``dsdt remote`` does. Earlier releases read the first argument as the local
    context; so that no old command changes meaning silently: with ``--remote-context`` the
    old reading applies; without a current context, a first argument naming a local context
    is that context; and a first argument naming another local context than the current one
    is refused as ambiguous.
    """
    if old_remote_context is not None:
        if context is not None:
            raise InvalidInput(
                "give either -c CONTEXT (with REMOTE_CONTEXT first) or --remote-context (the "
                "older form, with the local context first), not both"
            )
        return remote_context, old_remote_context
    if context is not None:
        return context, remote_context
    current = api.current_context()
    local_names = {info.name for info in api.ls_contexts()}
    if remote_context in local_names and remote_context != current:
        if current is None:
            return remote_context, remote_context
        raise InvalidInput(
            f"ambiguous: {remote_context!r} is a local context but the current context is "
            f"{current!r}; to bind {remote_context!r} run 'assay remote add {remote_context} "
            f"URL -c {remote_context}', to bind {current!r} to the remote context "
            f"{remote_context!r} run 'assay remote add {remote_context} URL -c {current}'"
        )
    return require_context(None), remote_context


@remote_app.command("show")
def show(
    ctx: typer.Context,
    context: Annotated[
        str | None,
        typer.Argument(
            metavar="[CONTEXT]", help="The context (default: current).", show_default=False
        ),
    ] = None,
    context_option: ContextOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show a context's remote and what this catalog knows it holds (no network)."""
    out = Output.of(ctx)
    if context is not None and context_option is not None and context != context_option:
        raise InvalidInput(f"two contexts given ({context!r} and -c {context_option!r})")
    context_name = require_context(context if context is not None else context_option)
    state = remotes.status(open_workspace(), context_name)
    bound = state.binding
    payload: dict[str, Any] = {"context": context_name, "remote": None}
    if bound is not None:
        payload["remote"] = {
            "remote_context": bound.remote_context,
            "url": bound.url,
            "options": bound.options,
            "location": bound.location,
            "pushed": state.pushed,
            "pulled": state.pulled,
            "not_localized": list(state.not_localized),
        }

    def render(console: Console) -> None:
        if bound is None:
            console.print(
                f"context {context_name!r} has no remote: bind one with "
                f"'assay remote add REMOTE_CONTEXT URL -c {context_name}'",
                markup=False,
            )
            return
        console.print(
            key_value_table(
                [
                    ("context", context_name),
                    ("remote", str(bound)),
                    ("endpoint", bound.options.get("endpoint_url", "") or "(AWS defaults)"),
                    ("pushed from here", state.pushed),
                    ("pulled here", state.pulled),
                    ("not localized", len(state.not_localized)),
                ]
            )
        )

    out.emit(payload, render)


def push(
    ctx: typer.Context,
    name: OptionalName = None,
    uuid: UuidOption = None,
    tag: TagOption = None,
    context: ContextOption = None,
    json_output: JsonOption = False,
) -> None:
    """Push committed bundles to the context's remote: NAME's newest version, --uuid, or
    (neither) every committed bundle (with --tag) the remote lacks."""
    out = Output.of(ctx)
    tags = parse_tags(tag)
    context_name = require_context(context)
    with _progress("pushing") as progress:
        report = api.push(context_name, name, tags or None, uuid, progress=progress)

    def render(console: Console) -> None:
        console.print(
            f"pushed {len(report.pushed)} bundle(s) to {report.remote} "
            f"({report.blobs_uploaded} file(s), {human_size(report.bytes_uploaded)} sent; "
            f"{report.blobs_already_there} file(s) already there); "
            f"{len(report.already_there)} already on the remote",
            markup=False,
        )
        if report.skipped_uncommitted:
            console.print(
                f"{report.skipped_uncommitted} uncommitted bundle(s) not pushed "
                "(commit them with 'assay commit NAME')",
                markup=False,
            )

    out.emit(
        {
            "remote": report.remote,
            "pushed": list(report.pushed),
            "already_there": list(report.already_there),
            "skipped_uncommitted": report.skipped_uncommitted,
            "blobs_uploaded": report.blobs_uploaded,
            "bytes_uploaded": report.bytes_uploaded,
            "blobs_already_there": report.blobs_already_there,
        },
        render,
    )


def pull(
    ctx: typer.Context,
    name: OptionalName = None,
    uuid: UuidOption = None,
    tag: TagOption = None,
    localize: Annotated[
        bool, typer.Option("--localize", help="Download the file data too.")
    ] = False,
    context: ContextOption = None,
    json_output: JsonOption = False,
) -> None:
    """Pull bundles from the context's remote: every version of NAME, --uuid, --tag, or
    all. File data stays remote until --localize or 'assay localize NAME'."""
    out = Output.of(ctx)
    tags = parse_tags(tag)
    context_name = require_context(context)
    with _progress("localizing") as progress:
        report = api.pull(context_name, name, uuid, localize, tags or None, progress=progress)

    def render(console: Console) -> None:
        console.print(
            f"pulled {len(report.pulled)} bundle(s) from {report.remote}; "
            f"{len(report.already_here)} already here",
            markup=False,
        )
        if localize:
            console.print(
                f"localized {len(report.localized)} bundle(s) "
                f"({human_size(report.bytes_downloaded)} downloaded)",
                markup=False,
            )
        elif report.pulled:
            console.print(
                "file data stays on the remote: 'assay localize NAME' downloads it",
                markup=False,
            )
        for skipped_uuid, why in report.skipped:
            console.print(f"skipped {skipped_uuid}: {why}", markup=False)

    out.emit(
        {
            "remote": report.remote,
            "pulled": list(report.pulled),
            "already_here": list(report.already_here),
            "skipped": [{"uuid": u, "reason": why} for u, why in report.skipped],
            "localized": list(report.localized),
            "bytes_downloaded": report.bytes_downloaded,
        },
        render,
    )


def _need_bundle(name: str | None, uuid: str | None, verb: str) -> None:
    if name is None and uuid is None:
        raise InvalidInput(f"give a bundle name or --uuid to {verb}")


def localize(
    ctx: typer.Context,
    name: OptionalName = None,
    uuid: UuidOption = None,
    context: ContextOption = None,
    json_output: JsonOption = False,
) -> None:
    """Download the file data of NAME's newest version (or --uuid) from the remote."""
    out = Output.of(ctx)
    _need_bundle(name, uuid, "localize")
    context_name = require_context(context)
    with _progress(f"localizing {name or uuid}") as progress:
        report = api.localize(context_name, name, uuid, progress=progress)
    record = operations.require(open_workspace(), context_name, uuid=report.uuid)
    out.emit(
        {
            "uuid": report.uuid,
            "blobs_downloaded": report.blobs_downloaded,
            "bytes_downloaded": report.bytes_downloaded,
        },
        f"localized {record.name}@{report.uuid[:8]}: {report.blobs_downloaded} file(s), "
        f"{human_size(report.bytes_downloaded)} downloaded",
    )


def delocalize(
    ctx: typer.Context,
    name: OptionalName = None,
    uuid: UuidOption = None,
    context: ContextOption = None,
    json_output: JsonOption = False,
) -> None:
    """Free the local file data of NAME's newest version (or --uuid); it must be safely on
    the remote (checked first)."""
    out = Output.of(ctx)
    _need_bundle(name, uuid, "delocalize")
    context_name = require_context(context)
    report = api.delocalize(context_name, name, uuid)
    out.emit(
        {
            "uuid": report.uuid,
            "blobs_removed": report.blobs_removed,
            "bytes_freed": report.bytes_freed,
            "blobs_kept": report.blobs_kept,
        },
        f"delocalized {name or ''}@{report.uuid[:8]}: freed {human_size(report.bytes_freed)} "
        f"({report.blobs_removed} file(s); {report.blobs_kept} kept for local-only bundles)",
    )


def rm_remote(
    out: Output,
    context_name: str,
    name: str | None,
    uuid: str | None,
    all_versions: bool,
    old: bool,
    force: bool,
) -> None:
    """The ``assay rm NAME --remote`` path: remove from the remote only."""
    if old:
        raise InvalidInput("--old cannot be used with --remote; name versions with --uuid")
    removal: RemoteRemoval = api.rm_remote(context_name, name, uuid, all_versions, force)

    def render(console: Console) -> None:
        for entry in removal.removed:
            console.print(
                f"removed {entry.name}@{entry.uuid[:8]} ({entry.uuid}) from {removal.remote}",
                markup=False,
            )
        console.print(
            f"deleted {removal.blobs_deleted} file object(s) from the remote; kept "
            f"{removal.blobs_kept} still used by other remote bundles",
            markup=False,
        )

    out.emit(
        {
            "remote": removal.remote,
            "removed": [{"uuid": e.uuid, "name": e.name} for e in removal.removed],
            "blobs_deleted": removal.blobs_deleted,
            "blobs_kept": removal.blobs_kept,
        },
        render,
    )
