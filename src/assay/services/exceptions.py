"""Exceptions across a process boundary: serialise in the child, rebuild in the parent.

The child sends ``{"type": "module.QualName", "message", "traceback", "code", "details"}``. The
parent re-raises the same type when it can import it: an ``AssayError`` type as itself; any other
``Exception`` type as a subclass of both that type and ``ChildError`` (so ``except ValueError``
and ``except AssayError`` both catch it, and the command line reports it on one line). A type
that cannot be imported or rebuilt becomes a plain ``ChildError``. The child's traceback text is
kept as ``child_traceback`` and added as a note, so it shows under the parent's traceback.
"""

from __future__ import annotations

import importlib
import traceback
from typing import Any

from assay.core.errors import AssayError, ChildError

_MAX_TRACEBACK = 64 * 1024
_hybrids: dict[type, type] = {}


def type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def exception_payload(error: BaseException) -> dict[str, Any]:
    """What the child sends about an exception it could not handle."""
    text = "".join(traceback.format_exception(error))
    if len(text) > _MAX_TRACEBACK:
        text = "[... traceback truncated ...]\n" + text[-_MAX_TRACEBACK:]
    if isinstance(error, SystemExit):
        message = f"the app exited with SystemExit({error.code!r}) (a sys.exit call)"
    else:
        message = str(error.message) if isinstance(error, AssayError) else str(error)
    payload: dict[str, Any] = {
        "type": type_name(type(error)),
        "message": message,
        "traceback": text,
    }
    if isinstance(error, AssayError):
        payload["code"] = error.code
        payload["details"] = _jsonable(error.details)
    return payload


def _jsonable(value: Any) -> Any:
    import json

    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return {key: str(item) for key, item in dict(value).items()}


def _import_type(name: str) -> type | None:
    if "." not in name:
        return None
    # Nested qualnames ("Outer.Inner") and module paths both contain dots: try each split.
    parts = name.split(".")
    for split in range(len(parts) - 1, 0, -1):
        module_name, attributes = ".".join(parts[:split]), parts[split:]
        try:
            target: Any = importlib.import_module(module_name)
        except Exception:
            continue
        try:
            for attribute in attributes:
                target = getattr(target, attribute)
        except AttributeError:
            return None
        return target if isinstance(target, type) else None
    return None


def _hybrid(cls: type) -> type | None:
    """``cls`` and ``ChildError`` in one class, named like ``cls``; None if they cannot mix."""
    if cls in _hybrids:
        return _hybrids[cls]
    try:
        hybrid = type(cls.__name__, (ChildError, cls), {"__module__": cls.__module__})
        hybrid.__qualname__ = cls.__qualname__
    except TypeError:
        return None
    _hybrids[cls] = hybrid
    return hybrid


def rebuild_exception(
    payload: dict[str, Any], service_id: str, question_uuid: str
) -> BaseException:
    """The exception to raise in the parent for a child's exception payload."""
    name = str(payload.get("type") or "Exception")
    message = str(payload.get("message") or "")
    child_traceback = str(payload.get("traceback") or "")
    details = dict(payload.get("details") or {})
    cls = _import_type(name)
    error: BaseException | None = None
    if cls is not None and issubclass(cls, AssayError):
        try:
            error = cls(message, details=details)
        except Exception:
            error = None
    elif cls is not None and issubclass(cls, Exception):
        hybrid = _hybrid(cls)
        if hybrid is not None:
            try:
                error = hybrid(message, details=details)
            except Exception:
                error = None
    if error is None:
        error = ChildError(f"{name}: {message}", details=details)
    error.child_type = name  # type: ignore[attr-defined]
    error.child_traceback = child_traceback  # type: ignore[attr-defined]
    error.service_id = service_id  # type: ignore[attr-defined]
    error.question_uuid = question_uuid  # type: ignore[attr-defined]
    if child_traceback:
        error.add_note(
            f"--- traceback in child {service_id} (question {question_uuid}) ---\n"
            + child_traceback.rstrip()
        )
    return error
