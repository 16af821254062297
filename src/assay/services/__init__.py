"""Services, twines and questions: ``app.py`` + ``twine.json`` + ``assay.yaml``.

    from assay.services import Runner, Child, Analysis, Twine

An Octue app ports by changing ``from octue.resources import Child`` (and ``Analysis``,
``Datafile``, ``Dataset``, ``Manifest``) to ``from assay.services import Child`` /
``from assay.resources import ...``, and ``from octue import Runner`` to
``from assay.services import Runner``. See ``docs/services.md``.

Names are imported on first use, so a worker process that answers one question does not pay
for the catalog (SQLAlchemy) unless its app needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assay.services.analysis import Analysis
    from assay.services.child import Child, cancel, get_answer
    from assay.services.config import ServiceConfig, ServiceId, load_config, parse_sruid
    from assay.services.events import (
        QuestionEvent,
        QuestionRecord,
        get_question,
        list_events,
        list_questions,
        replay,
    )
    from assay.services.registry import register, resolve
    from assay.services.runner import Runner
    from assay.services.twine import Twine

_EXPORTS = {
    "Analysis": "assay.services.analysis",
    "Child": "assay.services.child",
    "cancel": "assay.services.child",
    "get_answer": "assay.services.child",
    "ServiceConfig": "assay.services.config",
    "ServiceId": "assay.services.config",
    "load_config": "assay.services.config",
    "parse_sruid": "assay.services.config",
    "QuestionEvent": "assay.services.events",
    "QuestionRecord": "assay.services.events",
    "get_question": "assay.services.events",
    "list_events": "assay.services.events",
    "list_questions": "assay.services.events",
    "replay": "assay.services.events",
    "register": "assay.services.registry",
    "resolve": "assay.services.registry",
    "Runner": "assay.services.runner",
    "Twine": "assay.services.twine",
}

__all__ = [
    "Analysis",
    "Child",
    "QuestionEvent",
    "QuestionRecord",
    "Runner",
    "ServiceConfig",
    "ServiceId",
    "Twine",
    "cancel",
    "get_answer",
    "get_question",
    "list_events",
    "list_questions",
    "load_config",
    "parse_sruid",
    "register",
    "replay",
    "resolve",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'assay.services' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
