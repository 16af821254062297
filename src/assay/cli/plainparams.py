"""Reading command-line values without importing pydantic when there is nothing to convert.

Typer 0.29 converts every parameter's value through a pydantic ``TypeAdapter`` that it builds
on first use, even for a missing value or a plain string: that import and schema building cost
more than the rest of ``assay ls``. Text arrives as text, so ``str`` and ``list[str]`` values,
a missing value, and an ``int``/``float`` default that already has its type need no conversion;
they are returned as Typer's adapter would return them. Anything else (a number typed on the
command line, paths, choices, ranges) goes to Typer's own conversion, built on first use, so
its results and error messages are Typer's.

``tests/cli/test_cli_lazy.py`` checks the results equal Typer's and that ``assay ls`` and
shell completion import no pydantic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from typer._click import Command, Context
from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
from typer.core import _TyperParameter


@dataclass(frozen=True)
class PlainRuntimeParam(RuntimeParam):
    """Typer's conversion for one parameter, skipped when the value needs none."""

    descriptor: TypeDescriptor = field(compare=False)

    @cached_property
    def typer_param(self) -> RuntimeParam:
        """Typer's own conversion (pydantic), built on first need."""
        return build_runtime_param(self.descriptor)

    def _coerce_value(self, value: Any, param: _TyperParameter, ctx: Context) -> Any:
        plain = _unconverted(self.descriptor, value)
        if plain is not None:
            return plain[0]
        return self.typer_param._coerce_value(value, param=param, ctx=ctx)


def _unconverted(descriptor: TypeDescriptor, value: Any) -> tuple[Any] | None:
    """``(value,)`` as Typer's adapter would return it when no conversion is needed, else None."""
    annotation = descriptor.annotation
    if descriptor.parameter_info.parser is not None or descriptor.is_file:
        return None  # Typer runs a parser or opens a file even for text
    if annotation is str and isinstance(value, str):
        return (value,)
    if annotation == list[str] and isinstance(value, list | tuple):
        if all(isinstance(item, str) for item in value):
            return (list(value),)
        return None
    if annotation in (int, float) and type(value) is annotation and not descriptor.is_ranged:
        return (value,)
    return None


#: The help option's names everywhere (the root's context settings; subcommands inherit them).
HELP_OPTION_NAMES = ["-h", "--help"]


def install(command: Command) -> Command:
    """Give every Typer parameter of ``command`` (and of its subcommands) the plain reader.

    The help option is made here (Typer makes it on first use and keeps it) so that it gets
    the plain reader too: its missing value is otherwise converted by pydantic.
    """
    help_option = command.get_help_option(Context(command, help_option_names=HELP_OPTION_NAMES))
    for param in [*command.params, help_option]:
        if isinstance(param, _TyperParameter) and param._runtime_param is None:
            descriptor = param.type_descriptor
            param._runtime_param = PlainRuntimeParam(
                parameter_info=descriptor.parameter_info,
                annotation=descriptor.annotation,
                descriptor=descriptor,
            )
    for sub in getattr(command, "commands", {}).values():
        install(sub)
    return command
