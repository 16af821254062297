"""Parsing the dates users type for ``before``/``after`` (Disdat's and ISO forms)."""

from __future__ import annotations

from datetime import datetime

from assay.core.errors import InvalidInput

_FORMATS = ("%m-%d-%Y %H:%M:%S", "%m-%d-%Y %H:%M", "%m-%d-%Y")


def parse_when(value: str | datetime | float | None) -> float | None:
    """Epoch seconds for a date. Naive dates are local time, as a user typing them means.

    Accepts ISO 8601 (``2024-03-01``, ``2024-03-01T12:13:42+00:00``), Disdat's
    ``12-1-2009`` and ``12-1-2009 12:13:42``, a datetime, or epoch seconds.
    """
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    text = value.strip()
    parsers = [datetime.fromisoformat] + [
        lambda t, f=fmt: datetime.strptime(t, f) for fmt in _FORMATS
    ]
    for parse in parsers:  # the first form that reads the text wins
        try:
            return parse(text).timestamp()
        except ValueError:
            continue
    raise InvalidInput(
        f"cannot read the date {value!r}: use YYYY-MM-DD[THH:MM:SS] or MM-DD-YYYY[ HH:MM:SS]"
    )
