"""Deterministic job ids: the same work submitted twice gets the same id.

``job_id(*parts)`` is a UUID5 in a fixed Assay namespace over the canonical JSON of ``parts``
(sorted keys, no whitespace, UTF-8). Callers pass what identifies the work, for instance the
algorithm id and code hash, the input content hashes, the custom data and the provenance links.
Values JSON cannot hold (paths, sets, dates) are rejected rather than stringified, so two
different values never collide through ``str``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from assay.core.errors import InvalidInput

#: Fixed namespace of Assay job ids (never change: ids recorded in catalogs depend on it).
JOB_NAMESPACE = uuid.UUID("6b1f0a3e-2c55-5d1e-9a8e-4a5353415901")


def canonical_json(value: Any) -> str:
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"job id parts must be plain JSON values: {exc}") from None


def job_id(*parts: Any) -> str:
    """UUID5 (Assay namespace) over the canonical JSON of ``parts`` (a list)."""
    return str(uuid.uuid5(JOB_NAMESPACE, canonical_json(list(parts))))
