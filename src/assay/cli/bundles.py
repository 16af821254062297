"""Commands that change bundles: ``assay add``, ``assay commit``, ``assay rm``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from assay import api
from assay.bundles import operations
from assay.bundles.workspace import open_workspace
from assay.cli.output import (
    Output,
    bundle_dict,
    bundle_ref,
    human_size,
    key_value_table,
    tags_text,
)
from assay.cli.progress import add_progress
from assay.cli.remotes import rm_remote
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


def add(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="The bundle's name.", show_default=False)
    ],
    path: Annotated[
        str,
        typer.Argument(
            metavar="PATH", help="A file, or a directory to add whole.", show_default=False
        ),
    ],
    tag: TagOption = None,
    context: ContextOption = None,
    json_output: JsonOption = False,
) -> None:
    """Make a new version of bundle NAME from a file or a directory.

    Identical content and tags to the newest version make no new version (reported unchanged).
    """
    out = Output.of(ctx)
    tags = parse_tags(tag)
    context_name = require_context(context)
    previous = operations.get(open_workspace(), context_name, name)
    with add_progress(name) as progress:
        record = api.add(context_name, name, path, tags=tags, progress=progress).record
    status = "unchanged" if previous is not None and previous.uuid == record.uuid else "new"

    def render(console: Console) -> None:
        if status == "new":
            console.print(f"added {bundle_ref(record)} to context {record.context!r}", markup=False)
        else:
            console.print(
                f"unchanged: {bundle_ref(record)} already holds this content and these tags "
                "(no new version made)",
                markup=False,
            )
        console.print(
            key_value_table(
                [
                    ("uuid", record.uuid),
                    ("name", record.name),
                    ("files", record.file_count),
                    ("size", human_size(record.total_size)),
                    ("content hash", record.content_hash),
                    ("tags", tags_text(record.tags)),
                ]
            )
        )

    out.emit({"status": status, "bundle": bundle_dict(record)}, render)


def commit(
    ctx: typer.Context,
    name: OptionalName = None,
    uuid: UuidOption = None,
    tag: TagOption = None,
    context: ContextOption = None,
    json_output: JsonOption = False,
) -> None:
    """Commit the newest version of NAME (or --uuid): it is kept until removed."""
    out = Output.of(ctx)
    tags = parse_tags(tag)
    if name is None and uuid is None:
        raise InvalidInput("give a bundle name or --uuid to commit")
    context_name = require_context(context)
    record = operations.commit(open_workspace(), context_name, name, tags, uuid)
    out.emit(bundle_dict(record), f"committed {bundle_ref(record)}")


def rm(
    ctx: typer.Context,
    name: OptionalName = None,
    uuid: UuidOption = None,
    all_versions: Annotated[
        bool, typer.Option("--all", help="Remove every version of NAME.")
    ] = False,
    old: Annotated[
        bool, typer.Option("--old", help="Remove every version of NAME but the newest.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Remove even when other bundles depend on it.")
    ] = False,
    remote: Annotated[
        bool,
        typer.Option(
            "--remote", help="Remove from the context's remote only (the local copy stays)."
        ),
    ] = False,
    tag: TagOption = None,
    context: ContextOption = None,
    json_output: JsonOption = False,
) -> None:
    """Remove the newest version of NAME (or --uuid), every version, or the old ones.

    Refuses, naming them, while other bundles depend on what would go, unless --force.
    With --remote, removes from the remote only what is named, and only the file objects no
    other remote bundle uses.

    Blobs stay in the store until 'assay gc'.
    """
    out = Output.of(ctx)
    tags = parse_tags(tag)
    if all_versions and old:
        raise InvalidInput(
            "--all and --old cannot be used together: --all removes every version, "
            "--old every version but the newest"
        )
    if name is None and uuid is None:
        raise InvalidInput("give a bundle name or --uuid to remove")
    context_name = require_context(context)
    if remote:
        rm_remote(out, context_name, name, uuid, all_versions, old, force)
        return
    removed = operations.remove(
        open_workspace(), context_name, name, uuid, tags, all_versions, old, force
    )

    def render(console: Console) -> None:
        if not removed:
            console.print(f"nothing to remove: {name!r} has only its newest version", markup=False)
        for record in removed:
            console.print(f"removed {bundle_ref(record)} ({record.uuid})", markup=False)

    out.emit({"removed": [{"uuid": r.uuid, "name": r.name} for r in removed]}, render)
