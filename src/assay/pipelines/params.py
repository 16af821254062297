"""Task parameters with Luigi's names: declared as class attributes, checked, made canonical.

A parameter is declared on a task class (``n = IntParameter(default=2)``). It does three things:

- ``normalize(value)`` checks a Python value of the right type and returns the value the task
  sees (a ``ListParameter`` gives a tuple, as in Luigi); a wrong type raises
  ``InvalidParameter`` naming the parameter, what it expects and what it got.
- ``parse(text)`` reads the command-line form (``--param n=3``): the same text Luigi's
  ``parse`` accepts (``true``/``false``, JSON lists and dicts, ``YYYY-MM-DD`` dates).
- ``to_json(value)`` gives the canonical JSON value used in the cache key and stored in the
  bundle's params; ``None`` from ``portable_json`` means the value has no JSON form (an
  arbitrary object in a plain ``Parameter``): it can be hashed for in-process runs (by its
  ``repr``) but not sent to a subprocess.

``significant=False`` keeps a parameter out of the cache key (as in Luigi).
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Mapping
from typing import Any

from assay.core.errors import InvalidParameter


class _NoValue:
    def __repr__(self) -> str:
        return "<no default>"


NO_VALUE: Any = _NoValue()


class Parameter:
    """Any value (Luigi's ``Parameter``: usually a string). ``default`` makes it optional."""

    #: What the parameter expects, for error messages.
    expects = "any value"

    def __init__(
        self,
        default: Any = NO_VALUE,
        description: str | None = None,
        significant: bool = True,
        **luigi_options: Any,
    ) -> None:
        # Luigi options with no meaning here (positional, is_global, config_path, visibility,
        # batch_method, always_in_help) are accepted so a ported task imports unchanged.
        self.default = default
        self.description = description
        self.significant = significant
        self.name = ""  # set by the task class

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @property
    def has_default(self) -> bool:
        return self.default is not NO_VALUE

    def _error(self, value: Any, task: str) -> InvalidParameter:
        return InvalidParameter(
            f"parameter {self.name!r} of {task} expects {self.expects}, got "
            f"{type(value).__name__} {value!r}"
        )

    def normalize(self, value: Any, task: str = "the task") -> Any:
        return value

    def parse(self, text: str, task: str = "the task") -> Any:
        return text

    def to_json(self, value: Any) -> Any:
        portable = portable_json(value)
        if portable is None and value is not None:
            return {"$repr": f"{type(value).__module__}.{type(value).__qualname__}:{value!r}"}
        return portable

    def serialize(self, value: Any) -> str:
        """Luigi's string form (what ``parse`` reads back)."""
        return value if isinstance(value, str) else json.dumps(self.to_json(value))


class IntParameter(Parameter):
    expects = "an int"

    def normalize(self, value: Any, task: str = "the task") -> Any:
        if value is None and self.default is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._error(value, task)
        return value

    def parse(self, text: str, task: str = "the task") -> Any:
        try:
            return int(text)
        except ValueError:
            raise self._error(text, task) from None

    def to_json(self, value: Any) -> Any:
        return value


class FloatParameter(Parameter):
    expects = "a number"

    def normalize(self, value: Any, task: str = "the task") -> Any:
        if value is None and self.default is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._error(value, task)
        return float(value)

    def parse(self, text: str, task: str = "the task") -> Any:
        try:
            return float(text)
        except ValueError:
            raise self._error(text, task) from None

    def to_json(self, value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return {"$float": repr(value)}
        return value


class BoolParameter(Parameter):
    expects = "a bool"

    def __init__(self, default: Any = False, *args: Any, **kwargs: Any) -> None:
        # Luigi's BoolParameter defaults to False.
        super().__init__(default, *args, **kwargs)

    def normalize(self, value: Any, task: str = "the task") -> Any:
        if value is None and self.default is None:
            return None
        if not isinstance(value, bool):
            raise self._error(value, task)
        return value

    def parse(self, text: str, task: str = "the task") -> Any:
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise self._error(text, task)

    def to_json(self, value: Any) -> Any:
        return value


class ListParameter(Parameter):
    """A list of JSON values; the task sees a tuple (as in Luigi)."""

    expects = "a list (of JSON values)"

    def normalize(self, value: Any, task: str = "the task") -> Any:
        if value is None and self.default is None:
            return None
        if not isinstance(value, list | tuple) or portable_json(list(value)) is None:
            raise self._error(value, task)
        return _freeze(value)

    def parse(self, text: str, task: str = "the task") -> Any:
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise self._error(text, task) from None
        return self.normalize(value, task)

    def to_json(self, value: Any) -> Any:
        return portable_json(value)


class DictParameter(Parameter):
    """A dict of JSON values (string keys); the task sees a copy it may not share back."""

    expects = "a dict with string keys (of JSON values)"

    def normalize(self, value: Any, task: str = "the task") -> Any:
        if value is None and self.default is None:
            return None
        if not isinstance(value, Mapping) or portable_json(dict(value)) is None:
            raise self._error(value, task)
        return json.loads(json.dumps(portable_json(dict(value))))

    def parse(self, text: str, task: str = "the task") -> Any:
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise self._error(text, task) from None
        return self.normalize(value, task)

    def to_json(self, value: Any) -> Any:
        return portable_json(value)


class DateParameter(Parameter):
    """A ``datetime.date``; parsed from ``YYYY-MM-DD``."""

    expects = "a datetime.date (or 'YYYY-MM-DD')"

    def normalize(self, value: Any, task: str = "the task") -> Any:
        if value is None and self.default is None:
            return None
        if isinstance(value, datetime.datetime):
            return value.date()
        if isinstance(value, datetime.date):
            return value
        if isinstance(value, str):
            return self.parse(value, task)
        raise self._error(value, task)

    def parse(self, text: str, task: str = "the task") -> Any:
        try:
            return datetime.date.fromisoformat(text.strip())
        except ValueError:
            raise self._error(text, task) from None

    def to_json(self, value: Any) -> Any:
        return value.isoformat() if value is not None else None

    def serialize(self, value: Any) -> str:
        return str(self.to_json(value))


def _freeze(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_freeze(item) for item in value)
    return value


def portable_json(value: Any) -> Any:
    """``value`` as plain JSON (tuples become lists), or None when it has no JSON form.

    ``None`` itself is returned as ``None``; callers that need to tell "no JSON form" from a
    JSON null check the input for ``None`` first.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list | tuple):
        items = [portable_json(item) for item in value]
        if any(p is None and v is not None for p, v in zip(items, value, strict=True)):
            return None
        return items
    if isinstance(value, Mapping):
        result = {}
        for key, item in value.items():
            if not isinstance(key, str):
                return None
            converted = portable_json(item)
            if converted is None and item is not None:
                return None
            result[key] = converted
        return result
    return None
