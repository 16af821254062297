"""The current context: the one the CLI works in when no ``--context`` is given.

It is one line in ``ASSAY_HOME/current_context``, replaced atomically by ``switch``. This module
is small on purpose: the CLI reads it on every command without importing ``assay.api``.
"""

from __future__ import annotations

import os

from assay.bundles import operations
from assay.bundles.workspace import Workspace
from assay.core.errors import ContextNotFound
from assay.core.names import check_context_name


def current_context(workspace: Workspace) -> str | None:
    """The current context's name, or None when none is set."""
    try:
        name = workspace.settings.current_context_file.read_text().strip()
    except FileNotFoundError:
        return None
    return name or None


def switch(workspace: Workspace, context_name: str) -> None:
    """Make ``context_name`` (which must exist) the current context."""
    check_context_name(context_name)
    if context_name not in {c.name for c in operations.list_contexts(workspace)}:
        raise ContextNotFound(
            f"no context named {context_name!r}; create it with 'assay context create {context_name}'"
        )
    path = workspace.settings.current_context_file
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    temp.write_text(context_name + "\n")
    os.replace(temp, path)
