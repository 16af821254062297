"""FilterSet: an immutable set of items with Django-style filters, ``one()`` and ``order_by()``.

Octue's ``FilterSet`` combined several filters by recursing with the remaining keyword arguments
and passed a flag positionally into the wrong parameter, so the result could depend on the order
the filters were written in. Here every filter is parsed and checked first, then each item is
tested against all of them (no short-circuit), so several filters in one call, or chained calls,
are a plain AND whatever their order, and any error is raised whatever that order.

Filter keys are ``<attribute path>__<lookup>``: the path is one or more segments separated by
``__``; the first segment is an attribute of the item, later ones index into mappings (so
``tags__year`` is ``item.tags["year"]``) or read attributes of nested objects. When the last
segment is not a known lookup the filter means ``equals`` (``name="a.csv"``,
``tags__kind="raw"``). A tag whose key is also a lookup name needs the lookup written out:
``tags__in__equals=3``.

Missing values follow SQL's NULL rule: an item without the attribute or tag never matches a
filter on it, negated lookups included (``tags__kind__not_equals="raw"`` does not match a file
with no ``kind`` tag); only ``__exists=False`` matches it. The same holds when the value has a
type the lookup cannot compare (``tags__year__gt=2020`` against ``"unknown"``). So for any value
``v``, ``x=v``, ``x__not_equals=v`` and ``x__exists=False`` split the items into three parts.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable, Collection, Hashable, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, TypeVar

from assay.core.errors import FileNotInFilterSet, InvalidInput, MultipleFilesFound

T = TypeVar("T", bound=Hashable)

#: A lookup's answer: True (matches), False (does not), None (undefined: never matches, even
#: when negated).
_Answer = bool | None
_Predicate = Callable[[Any, Any], _Answer]

# Values that filter paths cannot step into: a further segment after one of these is a typo'd
# lookup, not a path.
_SCALARS = (str, bytes, int, float, bool, type(None), list, tuple, set, frozenset)


def _is_collection(value: Any) -> bool:
    return isinstance(value, Collection) and not isinstance(value, str | bytes)


def _guard(predicate: Callable[[Any, Any], bool]) -> _Predicate:
    """Turn a type mismatch inside a predicate into 'undefined' rather than an exception."""

    def guarded(item: Any, value: Any) -> _Answer:
        try:
            return bool(predicate(item, value))
        except (TypeError, ValueError, AttributeError):
            return None

    return guarded


def _casefold_contains(item: Any, value: str) -> bool:
    if isinstance(item, str):
        return value.casefold() in item.casefold()
    return any(
        isinstance(element, str) and element.casefold() == value.casefold() for element in item
    )


def _string_only(predicate: Callable[[str, str], bool]) -> Callable[[Any, Any], bool]:
    def checked(item: Any, value: Any) -> bool:
        if not isinstance(item, str):
            raise TypeError("not a string")
        return predicate(item, value)

    return checked


def _collection_only(predicate: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def checked(item: Any, value: Any) -> bool:
        if not _is_collection(item):
            raise TypeError("not a collection")
        return predicate(item, value)

    return checked


@dataclass(frozen=True)
class _Lookup:
    predicate: _Predicate
    #: Checks the filter's value up front; returns a description of what is expected, or "".
    check_value: Callable[[Any], str]


def _any_value(value: Any) -> str:
    return ""


def _string_value(value: Any) -> str:
    return "" if isinstance(value, str) else "a string"


def _collection_value(value: Any) -> str:
    return "" if _is_collection(value) else "a list, tuple or set"


def _range_value(value: Any) -> str:
    ok = isinstance(value, list | tuple) and len(value) == 2
    return "" if ok else "a (low, high) pair"


def _bool_value(value: Any) -> str:
    return "" if isinstance(value, bool) else "True or False"


# The positive lookups; each gets a ``not_<name>`` complement below.
_POSITIVE: dict[str, _Lookup] = {
    "equals": _Lookup(_guard(lambda item, value: item == value), _any_value),
    "iequals": _Lookup(
        _guard(_string_only(lambda item, value: item.casefold() == value.casefold())),
        _string_value,
    ),
    "contains": _Lookup(_guard(lambda item, value: value in item), _any_value),
    "icontains": _Lookup(_guard(_casefold_contains), _string_value),
    "starts_with": _Lookup(
        _guard(_string_only(lambda item, value: item.startswith(value))), _string_value
    ),
    "ends_with": _Lookup(
        _guard(_string_only(lambda item, value: item.endswith(value))), _string_value
    ),
    "in": _Lookup(_guard(lambda item, value: item in value), _collection_value),
    "in_range": _Lookup(_guard(lambda item, value: value[0] <= item <= value[1]), _range_value),
    "any": _Lookup(
        _guard(_collection_only(lambda item, value: any(v in item for v in value))),
        _collection_value,
    ),
    "all": _Lookup(
        _guard(_collection_only(lambda item, value: all(v in item for v in value))),
        _collection_value,
    ),
}


def _negate(predicate: _Predicate) -> _Predicate:
    def negated(item: Any, value: Any) -> _Answer:
        answer = predicate(item, value)
        return None if answer is None else not answer

    return negated


LOOKUPS: dict[str, _Lookup] = {
    **_POSITIVE,
    **{
        f"not_{name}": _Lookup(_negate(lk.predicate), lk.check_value)
        for name, lk in _POSITIVE.items()
    },
    "lt": _Lookup(_guard(lambda item, value: item < value), _any_value),
    "lte": _Lookup(_guard(lambda item, value: item <= value), _any_value),
    "gt": _Lookup(_guard(lambda item, value: item > value), _any_value),
    "gte": _Lookup(_guard(lambda item, value: item >= value), _any_value),
    "is": _Lookup(lambda item, value: item is value, _any_value),
    "is_not": _Lookup(lambda item, value: item is not value, _any_value),
    # ``exists`` is answered from whether the path resolved; see _Filter.answer.
    "exists": _Lookup(lambda item, value: value, _bool_value),
}


class _Missing:
    """The value of a path an item does not have."""


_MISSING = _Missing()


@dataclass(frozen=True)
class _Filter:
    key: str
    path: tuple[str, ...]
    lookup: str
    value: Any
    #: True when the lookup was implied (``name="x"``); a dead end at the last segment is then
    #: probably a misspelt lookup, reported as such.
    implicit: bool

    def answer(self, item: Any) -> bool:
        resolved = _resolve(item, self.path, self.key, self.implicit)
        if self.lookup == "exists":
            return (resolved is not _MISSING) is self.value
        if resolved is _MISSING:
            return False
        return LOOKUPS[self.lookup].predicate(resolved, self.value) is True


def _parse(key: str, value: Any) -> _Filter:
    segments = tuple(key.split("__"))
    if segments[-1] in LOOKUPS:
        path, lookup, implicit = segments[:-1], segments[-1], False
    else:
        path, lookup, implicit = segments, "equals", True
    if not path or any(not segment for segment in path):
        raise InvalidInput(
            f"invalid filter {key!r}: write filters as <attribute>[__<key>...]__<lookup>, "
            "e.g. name__ends_with or tags__year__gt"
        )
    for segment in path:
        if segment.startswith("_"):
            raise InvalidInput(f"invalid filter {key!r}: private attribute {segment!r}")
    expected = LOOKUPS[lookup].check_value(value)
    if expected:
        raise InvalidInput(f"invalid filter {key}={value!r}: {lookup!r} expects {expected}")
    return _Filter(key, path, lookup, value, implicit)


def _resolve(item: Any, path: Sequence[str], key: str = "", implicit: bool = False) -> Any:
    """Follow ``path`` from ``item``: mapping keys, then attributes; ``_MISSING`` if absent.

    Bound methods count as absent: a filter matches data, not behaviour.
    """
    current = item
    for index, segment in enumerate(path):
        if isinstance(current, Mapping):
            current = current.get(segment, _MISSING)
        elif isinstance(current, _SCALARS):
            if implicit and index == len(path) - 1:
                raise InvalidInput(
                    f"unknown filter lookup {segment!r} in {key!r}; known lookups: "
                    + ", ".join(sorted(LOOKUPS))
                )
            return _MISSING
        else:
            current = getattr(current, segment, _MISSING)
            if callable(current) and hasattr(current, "__self__"):
                return _MISSING
        if current is _MISSING:
            return _MISSING
    return current


def _describe(kwargs: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in kwargs.items()) or "(no filter)"


class FilterSet(AbstractSet[T]):
    """An immutable set of hashable items that can be filtered, picked from and ordered.

    Iteration follows insertion order (duplicates dropped), so results and error messages are
    reproducible; equality is set equality.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[T] = ()) -> None:
        self._items: dict[T, None] = dict.fromkeys(items)

    @classmethod
    def _from_iterable(cls, iterable: Iterable[Any]) -> FilterSet[Any]:
        return cls(iterable)

    def __contains__(self, item: object) -> bool:
        try:
            return item in self._items
        except TypeError:
            return False

    def __iter__(self) -> Iterator[T]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return self._hash()

    def __repr__(self) -> str:
        if not self._items:
            return f"<{type(self).__name__}()>"
        return f"<{type(self).__name__}({{{', '.join(repr(item) for item in self)}}})>"

    def filter(self, ignore_items_without_attribute: bool = True, **kwargs: Any) -> FilterSet[T]:
        """The items matching every filter in ``kwargs`` (AND, whatever their order).

        With ``ignore_items_without_attribute=False`` an item lacking a filtered path raises
        InvalidInput instead of not matching (Octue's option of the same name).
        """
        filters = [_parse(key, value) for key, value in kwargs.items()]
        if not ignore_items_without_attribute:
            self._check_all_resolve(filters)
        # A list, not a generator: every filter sees every item, so errors do not depend on
        # which filter happened to reject an item first.
        return FilterSet(item for item in self if all([f.answer(item) for f in filters]))

    def one(self, **kwargs: Any) -> T:
        """The single item matching ``kwargs``; FileNotInFilterSet if none, MultipleFilesFound
        if several."""
        matches = self.filter(**kwargs)
        if len(matches) == 1:
            return next(iter(matches))
        if not matches:
            raise FileNotInFilterSet(
                f"no item matches {_describe(kwargs)} among {len(self)} item(s)"
            )
        shown = ", ".join(repr(item) for item in list(matches)[:5])
        more = "" if len(matches) <= 5 else f" and {len(matches) - 5} more"
        raise MultipleFilesFound(
            f"{len(matches)} items match {_describe(kwargs)}: {shown}{more}; "
            "add a filter to pick one"
        )

    def order_by(
        self,
        attribute_path: str,
        reverse: bool = False,
        check_start_value: Any = None,
        check_constant_increment: Any = None,
    ) -> list[T]:
        """The items as a list sorted by ``attribute_path`` (``"name"``, ``"tags__sequence"``
        or Octue's dotted ``"tags.sequence"``).

        ``check_start_value`` and ``check_constant_increment`` validate the sorted values as
        returned (after ``reverse``): the first must equal the start, and each must exceed the one
        before it by the increment (so a reversed sequence needs a negative increment). This
        catches a missing or duplicated frame in a numbered sequence before it is processed.
        """
        path = tuple(attribute_path.replace(".", "__").split("__"))
        if not attribute_path or any(not segment or segment.startswith("_") for segment in path):
            raise InvalidInput(f"invalid attribute path {attribute_path!r} for order_by")
        keyed: list[tuple[Any, T]] = []
        for item in self:
            value = _resolve(item, path)
            if value is _MISSING:
                raise InvalidInput(
                    f"cannot order by {attribute_path!r}: {item!r} has no value for it"
                )
            keyed.append((value, item))
        try:
            keyed.sort(key=lambda pair: pair[0], reverse=reverse)
        except TypeError as error:
            raise InvalidInput(
                f"cannot order by {attribute_path!r}: the values are not comparable ({error})"
            ) from None
        values = [value for value, _ in keyed]
        _check_sequence(attribute_path, values, check_start_value, check_constant_increment)
        return [item for _, item in keyed]

    def _check_all_resolve(self, filters: Sequence[_Filter]) -> None:
        for item in self:
            for f in filters:
                if f.lookup != "exists" and _resolve(item, f.path, f.key, f.implicit) is _MISSING:
                    raise InvalidInput(f"filter {f.key!r}: {item!r} has no value for it")


def _check_sequence(path: str, values: Sequence[Any], start: Any, increment: Any) -> None:
    if start is not None:
        if not values:
            raise InvalidInput(
                f"ordering by {path!r}: expected a first value of {start!r}, got no items"
            )
        if values[0] != start:
            raise InvalidInput(
                f"ordering by {path!r}: expected the first value to be {start!r}, got {values[0]!r}"
            )
    if increment is None:
        return
    for previous, current in itertools.pairwise(values):
        try:
            step = current - previous
        except TypeError:
            raise InvalidInput(
                f"ordering by {path!r}: cannot check an increment between {previous!r} and "
                f"{current!r}"
            ) from None
        if not _same_step(step, increment):
            raise InvalidInput(
                f"ordering by {path!r}: expected a constant increment of {increment!r}, but "
                f"{previous!r} is followed by {current!r}"
            )


def _same_step(step: Any, increment: Any) -> bool:
    inexact = isinstance(step, float) or isinstance(increment, float)
    if inexact and isinstance(step, numbers.Real) and isinstance(increment, numbers.Real):
        return math.isclose(step, increment, rel_tol=1e-9, abs_tol=1e-12)
    return bool(step == increment)
