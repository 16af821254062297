"""Planning: resolving external bundles, cache look-ups, and why a task runs.

A task is cached when the context holds a bundle with the task's bundle name and processing
name (``keys.processing_name``: signature + code hash + input content hashes). Otherwise it
runs, for the first reason that applies:

``forced``            ``force`` (root), ``force_all`` or ``mark_force()``
``no output yet``     no earlier output of this task (class) under this bundle name
``param changed``     earlier outputs exist, none with these parameters
``code changed``      the newest output with these parameters was made by other code
``upstream changed``  same parameters and code, different input content (or, in a plan, an
                      upstream task runs first: its new content decides at run time whether
                      this task really re-runs; equal content means cached)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from assay.bundles import operations
from assay.bundles.workspace import Workspace
from assay.catalog import pipeline_queries
from assay.catalog.pipeline_queries import TaskOutput
from assay.core.errors import ExternalBundleNotFound, InvalidPipeline
from assay.core.records import BundleRecord
from assay.pipelines.graph import TaskGraph, TaskNode
from assay.pipelines.keys import processing_name, signature_prefix
from assay.pipelines.task import PlanningScope, TaskBase

FORCED = "forced"
UPSTREAM = "upstream changed"
NO_OUTPUT = "no output yet"
PARAMS = "param changed"
CODE = "code changed"


class CatalogScope(PlanningScope):
    """Resolves ``add_external_dependency`` against one context of the catalog."""

    def __init__(
        self, workspace: Workspace, context: str, input_tags: Mapping[str, Any] | None
    ) -> None:
        self.workspace = workspace
        self.context = context
        self.input_tags = dict(input_tags or {})
        with workspace.read() as conn:
            self.ctx_id = operations.require_context(conn, context)

    def find_external(
        self,
        task: TaskBase,
        target: type[TaskBase] | str | None,
        params: Mapping[str, Any] | None,
        human_name: str | None,
        uuid: str | None,
        tags: Mapping[str, Any] | None,
    ) -> BundleRecord:
        wanted_tags = {**self.input_tags, **dict(tags or {})}
        if uuid is not None:
            record = operations.get(self.workspace, self.context, uuid=uuid)
            what = f"uuid {uuid!r}"
        elif human_name is not None or isinstance(target, str):
            name = human_name if human_name is not None else str(target)
            record = operations.get(self.workspace, self.context, name, tags=wanted_tags)
            what = f"name {name!r}" + (f" with tags {wanted_tags}" if wanted_tags else "")
        elif isinstance(target, type) and issubclass(target, TaskBase):
            upstream = target(**dict(params or {}))
            prefix = signature_prefix(upstream.task_family(), upstream.task_signature)
            with self.workspace.read() as conn:
                found = pipeline_queries.newest_with_prefix(conn, self.ctx_id, prefix)
            record = (
                operations.get(self.workspace, self.context, uuid=found.uuid) if found else None
            )
            what = f"an output of {upstream.describe()}"
        else:
            raise InvalidPipeline(
                f"{task.describe()}: add_external_dependency needs a task class, a bundle name "
                f"or a uuid, got {target!r}"
            )
        if record is None:
            raise ExternalBundleNotFound(
                f"{task.describe()} needs an existing bundle ({what}) in context "
                f"{self.context!r}, and there is none; make it first (e.g. 'assay add')"
            )
        return record


class OutputIndex:
    """The context's bundles under the graph's bundle names, read once before a run.

    Answers cache look-ups and reasons from memory. A context holding more versions of those
    names than ``_INDEX_ROWS_PER_TASK`` per task is not read whole (``complete`` is False) and
    the look-ups go to the catalog wave by wave instead. Bundles made by another process
    during the run are not seen: the task then simply runs.
    """

    def __init__(self, rows: list[TaskOutput] | None) -> None:
        self.complete = rows is not None
        self.newest: dict[tuple[str, str], TaskOutput] = {}
        self.by_name: dict[str, list[TaskOutput]] = {}
        for row in sorted(rows or [], key=lambda r: r.created, reverse=True):
            self.newest.setdefault((row.processing_name, row.name), row)
            self.by_name.setdefault(row.name, []).append(row)

    def newest_with_prefix(self, prefix: str, name: str) -> TaskOutput | None:
        for row in self.by_name.get(name, ()):
            if row.processing_name.startswith(prefix):
                return row
        return None


_INDEX_ROWS_PER_TASK = 20


def load_index(workspace: Workspace, ctx_id: int, graph: TaskGraph) -> OutputIndex:
    names = [node.bundle_name for node in graph]
    with workspace.read() as conn:
        rows = pipeline_queries.outputs_named(
            conn, ctx_id, names, limit=_INDEX_ROWS_PER_TASK * len(names)
        )
    return OutputIndex(rows)


@dataclass(frozen=True)
class Decision:
    """What the plan says about one task."""

    node: TaskNode
    action: str  # "cached" or "run"
    reason: str  # "" when cached
    processing_name: str | None  # None when it depends on an upstream that runs first
    output: TaskOutput | None  # the cached output


def input_hashes(
    node: TaskNode, upstream: Mapping[str, TaskOutput | None]
) -> dict[str, str] | None:
    """Content hash per argument name, or None while some upstream output is unknown."""
    hashes = {arg: record.content_hash for arg, record in node.externals.items()}
    for arg, key in node.deps.items():
        output = upstream.get(key)
        if output is None:
            return None
        hashes[arg] = output.content_hash
    return hashes


def node_processing_name(node: TaskNode, hashes: Mapping[str, str]) -> str:
    return processing_name(node.task.task_family(), node.key, node.code_hash, hashes)


def is_forced(node: TaskNode, force: bool, force_all: bool) -> bool:
    return force_all or (force and node.is_root) or node.task._assay_force


def lookup(
    workspace: Workspace,
    ctx_id: int,
    wanted: Sequence[tuple[str, str]],
    index: OutputIndex | None = None,
) -> dict[tuple[str, str], TaskOutput]:
    """Cached outputs for ``(processing name, bundle name)`` pairs: from ``index`` when it is
    complete, else one query per 500."""
    if not wanted:
        return {}
    if index is not None and index.complete:
        return {key: index.newest[key] for key in wanted if key in index.newest}
    with workspace.read() as conn:
        return pipeline_queries.newest_by_processing_name(conn, ctx_id, wanted)


def why_not_cached(
    workspace: Workspace, ctx_id: int, node: TaskNode, index: OutputIndex | None = None
) -> str:
    """The reason a task with known inputs and no cached output runs (see module docstring)."""
    if index is not None and index.complete:
        same_params = index.newest_with_prefix(node.signature_prefix, node.bundle_name)
        if same_params is None:
            earlier = index.newest_with_prefix(node.family_prefix, node.bundle_name)
            return PARAMS if earlier is not None else NO_OUTPUT
    else:
        with workspace.read() as conn:
            same_params = pipeline_queries.newest_with_prefix(
                conn, ctx_id, node.signature_prefix, node.bundle_name
            )
            if same_params is None:
                earlier = pipeline_queries.newest_with_prefix(
                    conn, ctx_id, node.family_prefix, node.bundle_name, newest=False
                )
                return PARAMS if earlier is not None else NO_OUTPUT
    try:
        previous_code = json.loads(same_params.code_version).get("code_hash")
    except (ValueError, AttributeError):
        previous_code = None
    return CODE if previous_code != node.code_hash else UPSTREAM


def plan(
    workspace: Workspace, ctx_id: int, graph: TaskGraph, force: bool, force_all: bool
) -> list[Decision]:
    """The whole plan without running anything (``--dry-run``), in dependency order."""
    index = load_index(workspace, ctx_id, graph)
    outputs: dict[str, TaskOutput | None] = {}
    decisions: list[Decision] = []
    for node in graph:
        hashes = input_hashes(node, outputs)
        if hashes is None:
            outputs[node.key] = None
            forced = is_forced(node, force, force_all)
            reason = FORCED if forced else why_not_cached(workspace, ctx_id, node, index)
            decisions.append(Decision(node, "run", reason, None, None))
            continue
        name = node_processing_name(node, hashes)
        if is_forced(node, force, force_all):
            outputs[node.key] = None
            decisions.append(Decision(node, "run", FORCED, name, None))
            continue
        key = (name, node.bundle_name)
        found = lookup(workspace, ctx_id, [key], index).get(key)
        outputs[node.key] = found
        if found is not None:
            decisions.append(Decision(node, "cached", "", name, found))
        else:
            reason = why_not_cached(workspace, ctx_id, node, index)
            decisions.append(Decision(node, "run", reason, name, None))
    return decisions
