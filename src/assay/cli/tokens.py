"""``assay tokens create | ls | revoke``: bearer tokens for the server's API."""

from __future__ import annotations

import getpass
import re
from typing import Annotated

import typer
from rich.console import Console

from assay.auth import tokens
from assay.cli.output import Output, cell, iso_time, local_time, table
from assay.cli.session import JsonOption
from assay.core.errors import InvalidInput

tokens_app = typer.Typer(
    rich_markup_mode=None,
    name="tokens",
    help="Create, list and revoke bearer tokens for the HTTP API (scopes: read, write, admin).",
    no_args_is_help=True,
)

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str | None) -> float | None:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` as seconds; ``never``/None: no expiry."""
    if text is None or text == "never":
        return None
    match = _DURATION.fullmatch(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise InvalidInput(
            f"cannot read the lifetime {text!r}: use a positive number with s, m, h, d or w "
            "(e.g. 30d), or 'never'"
        )
    return float(int(match.group(1)) * _UNIT_S[match.group(2)])


def _token_dict(record: tokens.TokenRecord) -> dict[str, object]:
    return {
        "token_id": record.token_id,
        "user": record.owner,
        "name": record.name,
        "scopes": list(record.scopes),
        "created": iso_time(record.created),
        "expires": iso_time(record.expires),
        "revoked": iso_time(record.revoked),
        "last_used": iso_time(record.last_used),
    }


@tokens_app.command("create")
def create(
    ctx: typer.Context,
    user: Annotated[
        str | None,
        typer.Option(
            "--user", "-u", help="Whose token (default: your login name).", show_default=False
        ),
    ] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope", "-s", help="read, write or admin; repeat for several (default: read)."
        ),
    ] = None,
    name: Annotated[str, typer.Option("--name", help="A note saying what the token is for.")] = "",
    expires: Annotated[
        str,
        typer.Option("--expires", help="Lifetime such as 30d, 12h, 90m, or 'never'."),
    ] = "90d",
    json_output: JsonOption = False,
) -> None:
    """Create a token; it is printed once and cannot be shown again."""
    out = Output.of(ctx)
    record, token = tokens.create_token(
        user or getpass.getuser(),
        tuple(scope or ["read"]),
        name=name,
        expires_in_s=parse_duration(expires),
    )
    out.emit(
        {**_token_dict(record), "token": token},
        f"{token}\n(token {record.token_id} for {record.owner}, scopes "
        f"{','.join(record.scopes)}, expires {local_time(record.expires) or 'never'}; "
        "store it now: it is not shown again)",
    )


@tokens_app.command("ls")
def ls(
    ctx: typer.Context,
    user: Annotated[
        str | None,
        typer.Option("--user", "-u", help="Only this user's tokens.", show_default=False),
    ] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Include revoked tokens.")] = False,
    json_output: JsonOption = False,
) -> None:
    """List tokens (never their secrets)."""
    out = Output.of(ctx)
    records = tokens.list_tokens(user, include_revoked=show_all)

    def render(console: Console) -> None:
        if not records:
            console.print("no tokens: create one with 'assay tokens create'")
            return
        result = table("id", "user", "scopes", "name", "created", "expires", "state")
        for record in records:
            result.add_row(
                cell(record.token_id),
                cell(record.owner),
                cell(",".join(record.scopes)),
                cell(record.name),
                cell(local_time(record.created)[:16]),
                cell(local_time(record.expires)[:16] or "never"),
                cell("revoked" if record.revoked is not None else "active"),
            )
        console.print(result)

    out.emit([_token_dict(r) for r in records], render)


@tokens_app.command("revoke")
def revoke(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(metavar="TOKEN_ID", help="The token's id.")],
    json_output: JsonOption = False,
) -> None:
    """Revoke a token: requests carrying it are refused from now on."""
    out = Output.of(ctx)
    record = tokens.revoke_token(token_id)
    out.emit(_token_dict(record), f"revoked token {record.token_id} of {record.owner}")
