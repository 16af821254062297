"""The store's identity: ``STORE_ID`` in the store root, the id its catalog also holds.

The file is written whole or not at all (a temp file linked or renamed into place), so a
reader never sees a partial id.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

from assay.core.errors import StorageError

FILE_NAME = "STORE_ID"


def new_id() -> str:
    return str(uuid.uuid4())


def read(root: Path) -> str | None:
    """The store's id, or None when it has none (a new store, or one older than binding)."""
    try:
        text = (root / FILE_NAME).read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f"cannot read {root / FILE_NAME}: {exc.strerror}") from None
    return text or None


def write(root: Path, store_id: str, replace: bool = False) -> str:
    """Give the store ``store_id``; returns the id it holds afterwards.

    Without ``replace`` an existing id wins (two processes binding a new store at once agree
    on the first one written); with ``replace`` the id is swapped atomically.
    """
    root.mkdir(parents=True, exist_ok=True)
    target = root / FILE_NAME
    temp = root / f".{FILE_NAME}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part"
    try:
        temp.write_text(store_id + "\n")
        if replace:
            os.replace(temp, target)
            return store_id
        try:
            os.link(temp, target)  # fails if the target exists: create-if-absent, whole
        except FileExistsError:
            current = read(root)
            if current is not None:
                return current
            os.replace(temp, target)  # an empty file (should not happen): take its place
        return store_id
    except OSError as exc:
        raise StorageError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
