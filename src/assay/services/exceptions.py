"""A question's exceptions across the process boundary: the job layer's payloads
(``assay.jobs.payloads``: serialised in the worker, rebuilt in the asker from an allow-list of
types), plus which service and question an exception came from.
"""

from __future__ import annotations

import logging
from typing import Any

from assay.jobs.payloads import exception_payload, type_name

__all__ = ["exception_payload", "rebuild_exception", "type_name"]


def rebuild_exception(
    payload: dict[str, Any], service_id: str, question_uuid: str
) -> BaseException:
    """The exception to raise in the asker for a question's exception payload; it carries
    ``service_id`` and ``question_uuid`` and the worker's traceback as a note."""
    from assay.jobs.payloads import rebuild_exception as rebuild

    error = rebuild(payload, f"child {service_id} (question {question_uuid})")
    error.service_id = service_id  # type: ignore[attr-defined]
    error.question_uuid = question_uuid  # type: ignore[attr-defined]
    return error


def ask_again(
    error: Exception,
    retry: int,
    max_retries: int,
    prevent_retries_when: tuple[type[BaseException], ...],
    question_uuid: str,
    service_id: str,
    log: logging.Logger,
) -> bool:
    """Octue's retry rule for a failed question (every backend's): True, after a warning on
    ``log``, when retry ``retry + 1`` is allowed for ``error``."""
    if retry >= max_retries or isinstance(error, prevent_retries_when):
        return False
    log.warning(
        "question %s to %s failed (%s); asking again (retry %d of %d)",
        question_uuid,
        service_id,
        error,
        retry + 1,
        max_retries,
    )
    return True
