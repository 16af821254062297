"""Exceptions across a process boundary: serialise in the worker, rebuild in the supervisor.

The worker sends ``{"type": "module.QualName", "message", "traceback", "code", "details"}``.
The supervisor rebuilds the same type only when it is on the allow-list: a module named
``builtins`` or under a prefix given to ``allow_exception_modules`` (``assay.`` by default),
and already imported in the supervisor's process. A payload never makes the supervisor import
a module: a worker names types, it does not choose code to run.

An allowed ``AssayError`` type is rebuilt as itself; any other allowed ``Exception`` type as a
subclass of both that type and ``ChildError`` (so ``except ValueError`` and ``except
AssayError`` both catch it, and the command line reports it on one line). Anything else becomes
a plain ``ChildError`` whose message names the original type. The worker's traceback text is
kept as ``child_traceback`` and added as a note, so it shows under the supervisor's traceback.
"""

from __future__ import annotations

import json
import sys
import threading
import traceback
from typing import Any

from assay.core.errors import AssayError, ChildError

_MAX_TRACEBACK = 64 * 1024
_hybrids: dict[type, type] = {}
_allowed_prefixes: set[str] = {"assay."}
_lock = threading.Lock()


def allow_exception_modules(*prefixes: str) -> None:
    """Allow exception types from modules starting with these prefixes (e.g. ``"mylib."``)."""
    with _lock:
        _allowed_prefixes.update(prefixes)


def type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def exception_payload(error: BaseException) -> dict[str, Any]:
    """What the worker sends about an exception it could not handle."""
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
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return {key: str(item) for key, item in dict(value).items()}


def _allowed(module_name: str) -> bool:
    if module_name == "builtins":
        return True
    with _lock:
        return any(module_name.startswith(prefix) for prefix in _allowed_prefixes)


def allowed_type(name: str) -> type | None:
    """The exception type ``name`` ("module.QualName") if it is allowed and loaded, else None."""
    if "." not in name:
        return None
    parts = name.split(".")
    # Nested qualnames ("Outer.Inner") and module paths both contain dots: try each split.
    for split in range(len(parts) - 1, 0, -1):
        module_name, attributes = ".".join(parts[:split]), parts[split:]
        module = sys.modules.get(module_name)
        if module is None:
            continue
        if not _allowed(module_name):
            return None
        target: Any = module
        for attribute in attributes:
            target = getattr(target, attribute, None)
            if target is None:
                return None
        return target if isinstance(target, type) and issubclass(target, BaseException) else None
    return None


def _hybrid(cls: type) -> type | None:
    """``cls`` and ``ChildError`` in one class, named like ``cls``; None if they cannot mix."""
    with _lock:
        if cls in _hybrids:
            return _hybrids[cls]
    try:
        hybrid = type(cls.__name__, (ChildError, cls), {"__module__": cls.__module__})
        hybrid.__qualname__ = cls.__qualname__
    except TypeError:
        return None
    with _lock:
        _hybrids[cls] = hybrid
    return hybrid


def rebuild_exception(payload: dict[str, Any], where: str) -> BaseException:
    """The exception to raise for a worker's exception payload; ``where`` (e.g. ``service |
    job id``) heads the note that carries the worker's traceback."""
    name = str(payload.get("type") or "Exception")
    message = str(payload.get("message") or "")
    child_traceback = str(payload.get("traceback") or "")
    details = dict(payload.get("details") or {})
    cls = allowed_type(name)
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
    if child_traceback:
        error.add_note(f"--- traceback in {where} ---\n" + child_traceback.rstrip())
    return error
