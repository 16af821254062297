"""Cache keys: a task's signature and processing name.

- ``signature`` = BLAKE3 of the canonical JSON of the task's identity (``module.Class``) and
  its *significant* parameters. Equal tasks (same class, same parameters) have equal
  signatures; the graph uses it to run a task once however many tasks require it.
- ``processing_name`` = ``<Class>_<signature[:20]>_<key[:32]>`` where ``key`` is BLAKE3 of the
  signature, the task's code hash and its inputs' *content* hashes (by argument name). The
  ``<Class>_<signature>_`` prefix lets a previous output of the same task with the same
  parameters be found (to say *why* a task re-runs, and for ``add_external_dependency`` by
  class and parameters) with an index range scan.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import blake3

_FAMILY_LENGTH = 120
SIGNATURE_LENGTH = 20
KEY_LENGTH = 32


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace: one text per value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def signature(identity: str, significant_params: Mapping[str, Any]) -> str:
    text = canonical_json({"task": identity, "params": dict(significant_params)})
    return blake3.blake3(text.encode()).hexdigest()


def family_prefix(family: str) -> str:
    return f"{family[:_FAMILY_LENGTH]}_"


def signature_prefix(family: str, task_signature: str) -> str:
    return f"{family_prefix(family)}{task_signature[:SIGNATURE_LENGTH]}_"


def processing_name(
    family: str, task_signature: str, code_hash: str, input_hashes: Mapping[str, str]
) -> str:
    text = canonical_json(
        {"signature": task_signature, "code": code_hash, "inputs": dict(input_hashes)}
    )
    key = blake3.blake3(text.encode()).hexdigest()[:KEY_LENGTH]
    return f"{signature_prefix(family, task_signature)}{key}"
