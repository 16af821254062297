"""The question being answered in this thread, and manifest coercion shared by the asking
side (``Child``) and the answering side (``Runner``).

It lives apart from both so neither imports the other for it: the runner makes children, and a
child asked from inside an app reads the question it was asked from.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from assay.core.errors import InvalidManifest

if TYPE_CHECKING:
    from assay.core.manifest import Manifest


@dataclass(frozen=True)
class QuestionContext:
    """The question being answered in this thread, so children asked from it know their
    parent and originator."""

    question_uuid: str
    originator_question_uuid: str
    service_id: str


_current_question: contextvars.ContextVar[QuestionContext | None] = contextvars.ContextVar(
    "assay_current_question", default=None
)


def current_question() -> QuestionContext | None:
    return _current_question.get()


def enter_question(context: QuestionContext) -> contextvars.Token[QuestionContext | None]:
    """Make ``context`` this thread's question; give the token to ``leave_question``."""
    return _current_question.set(context)


def leave_question(token: contextvars.Token[QuestionContext | None]) -> None:
    _current_question.reset(token)


def to_manifest(
    value: Any, what: str, base_dir: str | os.PathLike[str] | None = None
) -> Manifest | None:
    """A Manifest from a Manifest (returned as is: they are immutable), a serialised manifest
    dict (copied, never changed), JSON text or a manifest file path; None stays None."""
    if value is None:
        return None
    # Imported here: a worker answering a values-only question never loads the manifest code.
    from assay.core.manifest import Manifest

    if isinstance(value, Manifest):
        return value
    if isinstance(value, Mapping):
        if "datasets" in value:
            return Manifest.deserialise(value, base_dir=base_dir)
        return Manifest(datasets=value)
    if isinstance(value, str | os.PathLike):
        return Manifest.from_json(value)
    raise InvalidManifest(
        f"{what}: expected a Manifest, a manifest dict, JSON text or a manifest file path, got "
        f"{type(value).__name__}"
    )
