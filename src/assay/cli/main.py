"""The ``assay`` application: commands, global options, and turning errors into exit codes.

| exit code | meaning |
|---|---|
| 0 | success |
| 1 | other Assay error |
| 2 | bad input (``InvalidInput``: names, tags, paths, dates) or a command-line usage error |
| 3 | not found (context, bundle) |
| 4 | conflict (exists already, ambiguous uuid prefix, dependents, unpushed bundles) |
| 5 | integrity (missing or corrupted blobs) |
| 6 | unavailable (catalog or storage cannot be reached or used) |
| 7 | a missing optional extra |
| 8 | a question to a service failed (the app raised, crashed, hung, timed out, was cancelled) |
| 9 | access denied (a dataset's compute-to-data policy, another consumer's job; a missing, expired or revoked token; a token without the scope needed) |
| 10 | a pipeline task failed (``assay apply``; its traceback precedes the error line) |
| 70 | internal error (a bug: please report it; ``ASSAY_DEBUG=1`` shows the traceback) |
| 130 | interrupted |
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer._click import Context as ClickContext  # the Context type TyperGroup.invoke takes
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperGroup

from assay.cli import lazy, plainparams
from assay.cli.output import report_error
from assay.cli.session import JsonOption, Session, session
from assay.core.errors import AssayError

USAGE_ERROR_EXIT = 2
INTERNAL_ERROR_EXIT = 70  # EX_SOFTWARE
INTERRUPTED_EXIT = 130


def _json_mode(ctx: ClickContext | None, args: Sequence[str] = ()) -> bool:
    """``--json`` was given: seen by its eager callback, or (for an error found while parsing,
    before the callback ran) present among the arguments before a ``--``."""
    if ctx is not None:
        obj = ctx.find_root().obj
        if isinstance(obj, Session) and obj.json:
            return True
    words = list(args)
    if "--" in words:
        words = words[: words.index("--")]
    return "--json" in words


def report_usage_error(error: UsageError, as_json: bool) -> None:
    """A usage error (unknown option or command, missing argument, bad value) as one line,
    like every other error, with the command's help hint; exit code 2 is the caller's."""
    message = error.format_message()
    if error.ctx is not None:
        message += f" (see '{error.ctx.command_path} --help')"
    report_error(message, "usage_error", as_json)


class AssayGroup(TyperGroup):
    """The root group: every error from any command ends here as one line and an exit code.

    Its commands are loaded on first use (``cli/lazy.py``); listing them for help only names
    them, so ``assay --help`` imports no command module.
    """

    _listing = False

    def list_commands(self, ctx: ClickContext) -> list[str]:
        return [*super().list_commands(ctx), *(c.name for c in lazy.COMMANDS)]

    def get_command(self, ctx: ClickContext, cmd_name: str) -> Any:
        found = super().get_command(ctx, cmd_name)
        if found is not None:
            return found
        if self._listing:
            return lazy.placeholder(cmd_name)
        return lazy.load(cmd_name)

    def format_help(self, ctx: ClickContext, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def shell_complete(self, ctx: ClickContext, incomplete: str) -> list[Any]:
        # Completing a command's name lists names and one-line help, importing no command.
        self._listing = True
        try:
            return super().shell_complete(ctx, incomplete)
        finally:
            self._listing = False

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: ClickContext | None = None,
        **extra: Any,
    ) -> ClickContext:
        # Errors in the root's own options (``assay --bogus``) happen here, before ``invoke``.
        given = list(args)
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except UsageError as error:
            if isinstance(error, NoArgsIsHelpError):
                raise  # ``assay`` alone prints the help
            report_usage_error(error, _json_mode(error.ctx, given))
            raise typer.Exit(USAGE_ERROR_EXIT) from None

    def invoke(self, ctx: ClickContext) -> Any:
        given = [*ctx.protected_args, *ctx.args] if hasattr(ctx, "protected_args") else ctx.args
        try:
            return super().invoke(ctx)
        except NoArgsIsHelpError:
            raise  # ``assay context`` alone prints that group's help
        except UsageError as error:
            report_usage_error(error, _json_mode(error.ctx or ctx, given))
            raise typer.Exit(USAGE_ERROR_EXIT) from None
        except (typer.Exit, typer.Abort, typer.TyperException, BrokenPipeError):
            raise  # Typer's own exits keep Typer's handling
        except AssayError as err:
            report_error(err.message, err.code, _json_mode(ctx), err.details)
            raise typer.Exit(err.exit_code) from None
        except KeyboardInterrupt:
            report_error("interrupted", "interrupted", _json_mode(ctx))
            raise typer.Exit(INTERRUPTED_EXIT) from None
        except Exception as exc:
            report_internal_error(exc, _json_mode(ctx))
            raise typer.Exit(INTERNAL_ERROR_EXIT) from None


def report_internal_error(exc: BaseException, as_json: bool) -> None:
    if os.environ.get("ASSAY_DEBUG") == "1":
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
        hint = ""
    else:
        hint = " (set ASSAY_DEBUG=1 to see the traceback)"
    report_error(
        f"{type(exc).__name__}: {exc}{hint}", "internal_error", as_json, prefix="internal error"
    )


def _version() -> str:
    from importlib import metadata  # here: 20 ms that only --version needs

    try:
        return metadata.version("assay")
    except metadata.PackageNotFoundError:
        return "unknown"


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"assay {_version()}")
        raise typer.Exit()


app = typer.Typer(
    # Plain (Click) help on every group: Rich would cost ~90 ms of imports per --help.
    rich_markup_mode=None,
    name="assay",
    cls=AssayGroup,
    help="Assay: versioned, content-addressed bundles of data in named contexts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish)
    context_settings={"help_option_names": plainparams.HELP_OPTION_NAMES},
)


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_version_callback, help="Show the version."
        ),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    session(ctx)


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write(f"{code}\n")
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """The console-script entry point; returns the process exit code."""
    command = plainparams.install(typer.main.get_command(app))
    try:
        command.main(
            args=list(argv) if argv is not None else None,
            prog_name="assay",
            standalone_mode=True,
        )
    except SystemExit as exc:
        return _exit_code(exc.code)
    except AssayError as err:  # raised outside a command (should not happen): same contract
        report_error(err.message, err.code, False)
        return err.exit_code
    except Exception as exc:
        report_internal_error(exc, False)
        return INTERNAL_ERROR_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main())
