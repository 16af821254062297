"""What every command shares: the per-invocation session, common options, context and tags.

The session lives on the root Click context (``ctx.obj``), so ``--json`` given before the
command (``assay --json ls``) or after it (``assay ls --json``) is seen by the command and by
the error handler alike. ``--json`` is eager: it is recorded before any other option is read,
so even an error found while reading options is reported as JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from assay.core.errors import InvalidInput, NoCurrentContext
from assay.core.gcpause import importing
from assay.core.names import parse_tag_options


@dataclass
class Session:
    json: bool = False


def session(ctx: typer.Context) -> Session:
    root = ctx.find_root()
    if not isinstance(root.obj, Session):
        root.obj = Session()
    return root.obj


def _json_callback(ctx: typer.Context, value: bool) -> bool:
    if value:
        session(ctx).json = True
    return value


JsonOption = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Machine-readable output: one JSON document on stdout, nothing else.",
        is_eager=True,
        callback=_json_callback,
    ),
]

ContextOption = Annotated[
    str | None,
    typer.Option(
        "--context",
        "-c",
        metavar="NAME",
        help="Context to work in (default: the current context, see 'assay context switch').",
        show_default=False,
    ),
]

TagOption = Annotated[
    list[str] | None,
    typer.Option(
        "--tag",
        "-t",
        help="A tag as key=value; repeat for several.",
        metavar="KEY=VALUE",
        show_default=False,
    ),
]
OptionalName = Annotated[
    str | None, typer.Argument(metavar="NAME", help="The bundle's name.", show_default=False)
]
UuidOption = Annotated[
    str | None,
    typer.Option(
        "--uuid",
        "-u",
        metavar="UUID",
        help="A bundle uuid (or a unique prefix of 4+ characters).",
        show_default=False,
    ),
]


#: The context a fresh ASSAY_HOME gets on first use (see ``require_context``).
DEFAULT_CONTEXT = "default"


def require_context(name: str | None) -> str:
    """``name`` when given, else the current context.

    On a fresh ASSAY_HOME (no context at all, none current) the context ``default`` is
    created and made current, so ``assay add x ./data`` works on a new machine without
    ceremony. When contexts exist but none is current, that is an error naming the way out:
    picking one of several for the user could put bundles where they were not meant to go.
    """
    if name is not None:
        return name
    # Here, not at the top: ``assay --help`` imports no catalog. Not ``assay.api`` either: the
    # bundles layer is all a listing needs, and the API imports much more.
    with importing():  # see core/gcpause.py
        from assay.bundles import current, operations
        from assay.bundles.workspace import open_workspace

    workspace = open_workspace()
    found = current.current_context(workspace)
    if found is not None:
        return found
    if not operations.list_contexts(workspace):
        operations.create_context(workspace, DEFAULT_CONTEXT)  # another process may have too
        current.switch(workspace, DEFAULT_CONTEXT)
        return DEFAULT_CONTEXT
    raise NoCurrentContext(
        "no current context: run 'assay context switch NAME' or pass --context NAME"
    )


def parse_tags(options: list[str] | None) -> dict[str, str]:
    """``--tag key=value`` options as a dict; a repeated key is refused (``InvalidTag``)."""
    return parse_tag_options(options)


def json_option(text: str | None, option: str) -> Any:
    """The JSON value of a command-line option: inline text, or ``@FILE`` to read it from a
    file; None when the option was not given. Bad JSON or an unreadable file: ``InvalidInput``
    naming the option."""
    if text is None:
        return None
    source = text
    if text.startswith("@"):
        try:
            source = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as error:
            raise InvalidInput(f"{option}: cannot read {text[1:]}: {error.strerror}") from None
    try:
        return json.loads(source)
    except json.JSONDecodeError as error:
        raise InvalidInput(f"{option}: not valid JSON: {error}") from None
