"""Loading an app: ``app.py`` with ``run(analysis)``, or a class ``App(analysis)`` with ``run()``.

``app_src`` may be a folder holding ``app.py``, the path of a ``.py`` file, a module, a function
taking the analysis, an ``App``-style class, or an object with a ``run(analysis)`` method. A file
is imported under a private module name (so two services' ``app.py`` never collide in
``sys.modules``) with its folder first on ``sys.path``, so it imports its helper modules as it
would when run from its own folder. The code hash identifying the app's revision is a BLAKE3
tree hash over its folder's Python files and its twine.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
import threading
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assay.core import hashing
from assay.core.errors import InvalidApp

AppRunner = Callable[[Any], None]
_SKIP_DIRS = frozenset({"__pycache__", "node_modules", "venv", "env", "site-packages"})
_import_lock = threading.Lock()
_loaded: dict[str, types.ModuleType] = {}


def app_file(app_src: str | os.PathLike[str]) -> Path:
    """The ``app.py`` a folder (or file) path names; InvalidApp when there is none."""
    path = Path(app_src).absolute()
    if path.is_dir():
        path = path / "app.py"
    if not path.is_file():
        raise InvalidApp(f"no app at {path}: a service needs an app.py with run(analysis) or App")
    return path


def load_module(path: Path) -> types.ModuleType:
    """Import ``path`` once per process under a private name, its folder on ``sys.path``."""
    key = str(path)
    with _import_lock:
        if key in _loaded:
            return _loaded[key]
        folder = str(path.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        name = f"assay_app_{hashing.hash_bytes(key.encode())[:16]}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise InvalidApp(f"cannot import the app at {path}")
        module = importlib.util.module_from_spec(spec)
        # Apps name their logger logging.getLogger(__name__): make that "app", as in Octue,
        # rather than the private module name (so the code is compiled and run here).
        module.__dict__["__name__"] = "app"
        sys.modules[name] = module
        try:
            code = compile(path.read_bytes(), str(path), "exec")
            exec(code, module.__dict__)
        except SyntaxError as error:
            sys.modules.pop(name, None)
            raise InvalidApp(
                f"the app at {path} has a syntax error at line {error.lineno}: {error.msg}"
            ) from None
        except Exception as error:
            sys.modules.pop(name, None)
            raise InvalidApp(
                f"importing the app at {path} failed: {type(error).__name__}: {error}"
            ) from error
        _loaded[key] = module
        return module


def _from_module(module: types.ModuleType, where: str) -> AppRunner:
    run = getattr(module, "run", None)
    app_class = getattr(module, "App", None)
    if callable(run) and inspect.isclass(app_class):
        raise InvalidApp(f"{where} defines both run(analysis) and App: keep exactly one of them")
    if callable(run):
        return run
    if inspect.isclass(app_class):
        return _from_class(app_class, where)
    raise InvalidApp(
        f"{where} has neither a run(analysis) function nor an App class with a run() method; "
        "add one of them"
    )


def _from_class(app_class: type, where: str) -> AppRunner:
    if not callable(getattr(app_class, "run", None)):
        raise InvalidApp(f"{where}: class {app_class.__name__} has no run() method")

    def run(analysis: Any) -> None:
        app_class(analysis).run()

    return run


def resolve_app(app_src: Any) -> AppRunner:
    """A callable taking the analysis, whatever form ``app_src`` has."""
    if isinstance(app_src, str | os.PathLike):
        path = app_file(app_src)
        return _from_module(load_module(path), str(path))
    if isinstance(app_src, types.ModuleType):
        return _from_module(app_src, f"module {app_src.__name__}")
    if inspect.isclass(app_src):
        return _from_class(app_src, f"class {app_src.__name__}")
    run = getattr(app_src, "run", None)
    if callable(run) and not inspect.isfunction(app_src):
        return run
    if callable(app_src):
        return app_src
    raise InvalidApp(
        f"cannot run {app_src!r}: give an app folder or app.py path, a module, a run(analysis) "
        "function or an App class"
    )


def code_hash(app_src: Any, twine_path: str | os.PathLike[str] | None = None) -> str:
    """BLAKE3 tree hash over the app's source files (and the twine file, when given)."""
    entries: list[tuple[str, str, int]] = []
    root = _source_root(app_src)
    if root is not None and root.is_dir():
        for directory, subdirectories, filenames in os.walk(root):
            subdirectories[:] = sorted(
                d for d in subdirectories if not d.startswith(".") and d not in _SKIP_DIRS
            )
            for filename in filenames:
                if filename.endswith(".py"):
                    full = os.path.join(directory, filename)
                    relative = os.path.relpath(full, root).replace(os.sep, "/")
                    entries.append(_entry(relative, full))
    elif root is not None and root.is_file():
        entries.append(_entry(root.name, str(root)))
    else:
        source = _callable_source(app_src)
        entries.append(("<source>", hashing.hash_bytes(source.encode()), len(source)))
    if twine_path is not None and os.path.isfile(twine_path):
        entries.append(_entry("<twine>", os.fspath(twine_path)))
    return hashing.tree_hash(entries)


def _entry(relative: str, full: str) -> tuple[str, str, int]:
    size = os.stat(full).st_size
    return (relative, hashing.hash_file(full, size), size)


def _source_root(app_src: Any) -> Path | None:
    if isinstance(app_src, str | os.PathLike):
        path = Path(app_src).absolute()
        return path.parent if path.is_file() else path
    if isinstance(app_src, types.ModuleType) and getattr(app_src, "__file__", None):
        return Path(app_src.__file__).absolute()  # type: ignore[arg-type]
    return None


def _callable_source(app_src: Any) -> str:
    target = app_src if inspect.isfunction(app_src) or inspect.isclass(app_src) else type(app_src)
    try:
        return inspect.getsource(target)
    except (OSError, TypeError):
        return repr(target)
