"""``assay context create | ls | switch | rm``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from assay import api
from assay.cli.output import Output, cell, iso_time, local_time, table
from assay.cli.session import ContextOption, JsonOption
from assay.core.errors import ContextExists, ContextNotFound, InvalidInput
from assay.core.names import check_context_name
from assay.core.records import ContextInfo

context_app = typer.Typer(
    rich_markup_mode=None,
    name="context",
    help="Create, list, switch and remove contexts (named collections of bundles).",
    no_args_is_help=True,
)

ContextName = Annotated[
    str | None,
    typer.Argument(metavar="NAME", help="The context's name (or -c NAME).", show_default=False),
]


def _the_name(name: str | None, option: str | None) -> str:
    """The context named by the argument or by ``-c``/``--context`` (either, or both alike)."""
    if name is not None and option is not None and name != option:
        raise InvalidInput(f"two context names given ({name!r} and -c {option!r}); give one")
    chosen = name if name is not None else option
    if chosen is None:
        raise InvalidInput("give the context's name: NAME or -c NAME")
    return chosen


@context_app.command("create")
def create(
    ctx: typer.Context,
    name: ContextName = None,
    context: ContextOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create a context."""
    out = Output.of(ctx)
    name = _the_name(name, context)
    if api.context(name) != 0:
        raise ContextExists(f"context {name!r} already exists")
    out.emit(
        {"context": name, "created": True},
        f"created context {name!r} (make it current with 'assay context switch {name}')",
    )


def _context_dict(info: ContextInfo, current: str | None) -> dict[str, object]:
    return {
        "name": info.name,
        "current": info.name == current,
        "created": iso_time(info.created),
        "bundles": info.bundle_count,
        "committed": info.committed_count,
        "remote": info.remote,
    }


@context_app.command("ls")
def ls(ctx: typer.Context, context: ContextOption = None, json_output: JsonOption = False) -> None:
    """List contexts with their bundle counts; '*' marks the current one (-c: only that one)."""
    out = Output.of(ctx)
    contexts = api.ls_contexts()
    if context is not None:
        check_context_name(context)
        contexts = [info for info in contexts if info.name == context]
        if not contexts:
            raise ContextNotFound(f"no context named {context!r}")
    current = api.current_context()

    def render(console: Console) -> None:
        if not contexts:
            console.print("no contexts yet: create one with 'assay context create NAME'")
            return
        result = table(" ", "name", "bundles", "committed", "created", "remote")
        for info in contexts:
            result.add_row(
                cell("*" if info.name == current else ""),
                cell(info.name),
                cell(info.bundle_count),
                cell(info.committed_count),
                cell(local_time(info.created)),
                cell(info.remote or ""),
            )
        console.print(result)

    out.emit([_context_dict(info, current) for info in contexts], render)


@context_app.command("switch")
def switch(
    ctx: typer.Context,
    name: ContextName = None,
    context: ContextOption = None,
    json_output: JsonOption = False,
) -> None:
    """Make a context the current one for later commands."""
    out = Output.of(ctx)
    name = _the_name(name, context)
    api.switch(name)
    out.emit({"current_context": name}, f"switched to context {name!r}")


@context_app.command("rm")
def rm(
    ctx: typer.Context,
    name: ContextName = None,
    context: ContextOption = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Delete even when it holds committed (unpushed) bundles."),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Delete a context and its bundles (blobs are freed by 'assay gc')."""
    out = Output.of(ctx)
    name = _the_name(name, context)
    check_context_name(name)
    if name not in {info.name for info in api.ls_contexts()}:
        # api.delete_context is a no-op here (as Disdat's); a person typing a name learns.
        raise ContextNotFound(f"no context named {name!r}")
    api.delete_context(name, force=force)
    out.emit({"deleted": name}, f"deleted context {name!r}")
