"""Commands that read bundles: ``assay ls``, ``assay search``, ``assay show``, ``assay cat``.

The catalog (SQLAlchemy) is imported when a command runs, not with this module, so a command's
``--help`` and shell completion of its options stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from assay.cli.output import (
    Output,
    bundle_dict,
    cell,
    human_size,
    key_value_table,
    local_time,
    print_bundles,
    short,
    table,
    tags_text,
    to_json,
)
from assay.cli.session import (
    ContextOption,
    JsonOption,
    OptionalName,
    TagOption,
    UuidOption,
    parse_tags,
    require_context,
)
from assay.core.errors import BundleNotFound, InvalidInput
from assay.core.gcpause import importing

if TYPE_CHECKING:  # Rich is imported when a table is drawn (a long listing draws none)
    from rich.console import Console

    from assay.core.records import BundleRecord, FileEntry


def _newest_per_name(records: list[BundleRecord]) -> list[BundleRecord]:
    seen: dict[str, BundleRecord] = {}
    for record in records:  # newest first
        seen.setdefault(record.name, record)
    return list(seen.values())


def _show_listing(out: Output, records: list[BundleRecord], empty: str) -> None:
    if out.json:
        out.emit([bundle_dict(record) for record in records])
    elif records:
        print_bundles(out, records)
    else:
        out.emit(None, empty)


def ls(
    ctx: typer.Context,
    name: OptionalName = None,
    all_versions: Annotated[
        bool, typer.Option("--all-versions", "-a", help="List every version, not the newest.")
    ] = False,
    context: ContextOption = None,
    json_output: JsonOption = False,
) -> None:
    """List the newest version of every bundle, or the versions of NAME."""
    with importing():
        from assay.bundles import operations
        from assay.bundles.workspace import open_workspace

    out = Output.of(ctx)
    context_name = require_context(context)
    workspace = open_workspace()
    if name is None:
        if all_versions:
            records = operations.search(workspace, context_name)
        else:
            records = operations.latest_per_name(workspace, context_name)
        empty = f"no bundles in context {context_name!r}"
    else:
        records = operations.versions(workspace, context_name, name)
        if not records:
            raise BundleNotFound(f"no bundle named {name!r} in context {context_name!r}")
        if not all_versions:
            records = _newest_per_name(records)
        empty = ""
    _show_listing(out, records, empty)


def search(
    ctx: typer.Context,
    name_glob: Annotated[
        str | None,
        typer.Argument(
            metavar="NAME_GLOB",
            help="A bundle name; '*' and '?' are wildcards.",
            show_default=False,
        ),
    ] = None,
    tag: TagOption = None,
    before: Annotated[
        str | None,
        typer.Option(
            metavar="DATE",
            help="Made before this date: YYYY-MM-DD[THH:MM:SS] (local time).",
            show_default=False,
        ),
    ] = None,
    after: Annotated[
        str | None,
        typer.Option(
            metavar="DATE", help="Made at or after this date (same forms).", show_default=False
        ),
    ] = None,
    committed: Annotated[
        bool | None,
        typer.Option(
            "--committed/--uncommitted",
            help="Only committed / uncommitted bundles.",
            show_default=False,
        ),
    ] = None,
    context: ContextOption = None,
    json_output: JsonOption = False,
) -> None:
    """Find bundle versions by name pattern, tags, date and committed state (newest first)."""
    with importing():
        from assay.bundles import operations
        from assay.bundles.workspace import open_workspace

    out = Output.of(ctx)
    tags = parse_tags(tag)
    context_name = require_context(context)
    records = operations.search(
        open_workspace(), context_name, name_glob, tags, committed, before, after
    )
    _show_listing(out, records, f"no bundles match in context {context_name!r}")


def _details(record: BundleRecord) -> list[tuple[str, Any]]:
    from rich.text import Text

    dependencies = Text()
    for index, dependency in enumerate(record.dependencies):
        if index:
            dependencies.append("\n")
        dependencies.append(f"{dependency.arg_name or dependency.kind} -> {dependency.uuid}")
    return [
        ("uuid", record.uuid),
        ("context", record.context),
        ("name", record.name),
        ("processing name", record.processing_name),
        ("owner", record.owner),
        ("created", local_time(record.created)),
        ("committed", "yes" if record.committed else "no"),
        ("content hash", record.content_hash),
        ("presentation", record.presentation),
        ("files", f"{record.file_count} ({human_size(record.total_size)})"),
        ("params", to_json(record.params) if record.params else ""),
        ("code version", to_json(record.code_version) if record.code_version else ""),
        ("tags", tags_text(record.tags)),
        ("dependencies", dependencies),
    ]


def _files_table(files: list[FileEntry]) -> Any:
    result = table(title="files")
    result.add_column("path", overflow="fold")
    result.add_column("size", justify="right", no_wrap=True)
    result.add_column("blob", no_wrap=True)
    for entry in files:
        result.add_row(
            cell(entry.path), cell(human_size(entry.size)), cell(short(entry.blob_hash, 12))
        )
    return result


def show(
    ctx: typer.Context,
    reference: Annotated[
        str,
        typer.Argument(
            metavar="NAME|UUID",
            help="A bundle name (its newest version), uuid, or unique uuid prefix.",
            show_default=False,
        ),
    ],
    context: ContextOption = None,
    json_output: JsonOption = False,
) -> None:
    """Everything about one bundle: identity, provenance, tags and files."""
    with importing():
        from assay.bundles import operations
        from assay.bundles.workspace import open_workspace

    out = Output.of(ctx)
    context_name = require_context(context)
    workspace = open_workspace()
    record = operations.resolve(workspace, context_name, reference)
    files = operations.files_of(workspace, record)

    def render(console: Console) -> None:
        console.print(key_value_table(_details(record)))
        if files:
            console.print()
            console.print(_files_table(files))

    out.emit(bundle_dict(record, files), render)


def _is_dataframe(value: Any) -> bool:
    cls = type(value)
    return cls.__name__ == "DataFrame" and cls.__module__.startswith("pandas")


def cat(
    ctx: typer.Context,
    name: OptionalName = None,
    uuid: UuidOption = None,
    context: ContextOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print a bundle's data.

    Values print as JSON, files as one local path per line, a DataFrame as a table.

    Files are checked against their hashes before they are shown.
    """
    with importing():
        from assay.bundles import operations
        from assay.bundles.workspace import open_workspace

    out = Output.of(ctx)
    if name is None and uuid is None:
        raise InvalidInput("give a bundle name or --uuid")
    context_name = require_context(context)
    workspace = open_workspace()
    if uuid is not None:
        record = operations.resolve(workspace, context_name, uuid, by_name=False)
    else:
        assert name is not None
        record = operations.resolve(workspace, context_name, name)
    data = operations.load_data(workspace, record)

    def render(console: Console) -> None:
        if record.presentation in ("file", "directory", "files"):
            paths = data if isinstance(data, list) else [data]
            console.out("\n".join(str(p) for p in paths), highlight=False)
        elif _is_dataframe(data):
            console.out(data.to_string(), highlight=False)
        else:
            console.out(to_json(data), highlight=False)

    out.emit(data, render)
