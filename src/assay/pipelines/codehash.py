"""A task's code hash: its class source plus the same-module functions and classes it uses.

The hash covers
- the source of the task class and of its own base classes defined outside Assay;
- every function or (non-task) class defined in the task's module that the class's code names
  (looked up by the global names its bytecode loads), followed transitively.

Other task classes are not included: a changed upstream task changes its own key, and through
its output's content hash, ours. When source is unavailable (classes made with ``exec``), the
bytecode and constants are hashed instead, so the hash still changes with the code.

Results are cached per class object: a redefined class is a new object with its own entry.
"""

from __future__ import annotations

import inspect
import marshal
import sys
import types
import weakref
from typing import Any

import blake3

_cache: weakref.WeakKeyDictionary[type, str] = weakref.WeakKeyDictionary()


def code_hash(cls: type, stop_at: tuple[type, ...] = ()) -> str:
    """The 64-hex BLAKE3 code hash of task class ``cls`` (see the module docstring).

    ``stop_at`` are framework base classes whose code does not count (``PipeTask`` itself).
    """
    cached = _cache.get(cls)
    if cached is not None:
        return cached
    hasher = blake3.blake3()
    module = sys.modules.get(cls.__module__)
    module_globals = vars(module) if module is not None else {}
    seen: set[int] = set()
    pending: list[Any] = [
        base
        for base in cls.__mro__
        if base is not object and base not in stop_at and not _is_framework(base)
    ]
    while pending:
        obj = pending.pop(0)
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        hasher.update(_source_of(obj))
        for name in sorted(_global_names(obj)):
            referenced = module_globals.get(name)
            if referenced is None or id(referenced) in seen:
                continue
            if _same_module_code(referenced, cls.__module__) and not _is_task(referenced, stop_at):
                pending.append(referenced)
    digest = hasher.hexdigest()
    _cache[cls] = digest
    return digest


def _is_framework(cls: type) -> bool:
    return cls.__module__.startswith("assay.")


def _is_task(obj: Any, stop_at: tuple[type, ...]) -> bool:
    return isinstance(obj, type) and bool(stop_at) and issubclass(obj, stop_at)


def _same_module_code(obj: Any, module_name: str) -> bool:
    if isinstance(obj, types.FunctionType | type):
        return getattr(obj, "__module__", None) == module_name
    return False


def _source_of(obj: Any) -> bytes:
    try:
        return inspect.getsource(obj).encode()
    except (OSError, TypeError):
        # No source file (exec, REPL): the bytecode and constants still change with the code.
        return b"".join(marshal.dumps(code) for code in _code_objects(obj))


def _code_objects(obj: Any) -> list[types.CodeType]:
    found: list[types.CodeType] = []
    if isinstance(obj, types.FunctionType):
        found.append(obj.__code__)
    elif isinstance(obj, type):
        for value in vars(obj).values():
            function = value.__func__ if isinstance(value, classmethod | staticmethod) else value
            if isinstance(function, property):
                function = function.fget
            if isinstance(function, types.FunctionType):
                found.append(function.__code__)
    return found


def _global_names(obj: Any) -> set[str]:
    names: set[str] = set()
    stack = list(_code_objects(obj))
    while stack:
        code = stack.pop()
        names.update(code.co_names)
        stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return names
