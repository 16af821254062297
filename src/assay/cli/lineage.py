"""``assay lineage``: where a bundle came from, or what was made from it."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from assay import api
from assay.bundles.lineage import to_prov_json
from assay.cli.output import Output, bundle_dict, cell, short, table, write_json
from assay.cli.session import ContextOption, JsonOption, require_context
from assay.core.records import LineageNode


class LineageFormat(StrEnum):
    table = "table"
    prov_json = "prov-json"


def _node_dict(node: LineageNode) -> dict[str, Any]:
    return {
        "uuid": node.uuid,
        "depth": node.depth,
        "direction": node.direction,
        "via_uuid": node.via_uuid,
        "arg_name": node.arg_name,
        "kind": node.kind,
        "missing": node.missing,
        "bundle": bundle_dict(node.record) if node.record is not None else None,
    }


def lineage(
    ctx: typer.Context,
    reference: Annotated[
        str,
        typer.Argument(
            metavar="UUID_OR_NAME",
            help="A bundle uuid (or unique prefix) or name (its newest version).",
            show_default=False,
        ),
    ],
    depth: Annotated[
        int | None,
        typer.Option(
            "--depth",
            "-d",
            min=0,
            metavar="N",
            help="Follow at most this many edges.",
            show_default=False,
        ),
    ] = None,
    downstream: Annotated[
        bool,
        typer.Option("--downstream", help="Show what was made from it instead of its inputs."),
    ] = False,
    output_format: Annotated[
        LineageFormat,
        typer.Option("--format", "-f", help="A table, or a W3C PROV-JSON document."),
    ] = LineageFormat.table,
    context: ContextOption = None,
    json_output: JsonOption = False,
) -> None:
    """Walk lineage breadth-first from one bundle (depth 0), upstream by default."""
    out = Output.of(ctx)
    context_name = require_context(context)
    nodes = api.lineage(context_name, reference, depth, downstream)
    if output_format is LineageFormat.prov_json:
        write_json(to_prov_json(nodes))
        return

    def render(console: Console) -> None:
        result = table("depth", "uuid", "name", "via arg", "from", "")
        for node in nodes:
            result.add_row(
                cell(node.depth),
                cell(short(node.uuid)),
                cell(node.record.name if node.record is not None else "?"),
                cell(node.arg_name or node.kind),
                cell(short(node.via_uuid)),
                Text("missing", style="red") if node.missing else cell(""),
            )
        console.print(result)

    out.emit([_node_dict(node) for node in nodes], render)
