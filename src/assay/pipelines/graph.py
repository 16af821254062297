"""The task graph: every task a root needs, once each, in an order where inputs come first.

``build_graph`` instantiates nothing itself: it calls each task's ``pipe_requires`` once
(tasks with equal signatures are one node), walks depth first without recursion (a 10,000-task
chain is fine), and refuses, before anything runs:
- a dependency cycle (``DependencyCycle``, naming the path ``A(..) -> B(..) -> A(..)``);
- two different tasks that would write the same bundle name (``DuplicateOutputName``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from assay.core.errors import DependencyCycle, DuplicateOutputName, InvalidPipeline
from assay.core.records import BundleRecord
from assay.pipelines.keys import family_prefix, signature_prefix
from assay.pipelines.task import ExternalInput, PlanningScope, TaskBase, TaskDependency


@dataclass
class TaskNode:
    key: str  # the task's signature
    task: TaskBase
    bundle_name: str
    code_hash: str
    is_root: bool = False
    deps: dict[str, str] = field(default_factory=dict)  # argument name -> upstream node key
    externals: dict[str, BundleRecord] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.task.describe()

    @property
    def family_prefix(self) -> str:
        return family_prefix(self.task.task_family())

    @property
    def signature_prefix(self) -> str:
        return signature_prefix(self.task.task_family(), self.key)


@dataclass
class TaskGraph:
    nodes: dict[str, TaskNode]  # in dependency order: every node after its upstream nodes
    root: str

    def __iter__(self) -> Iterator[TaskNode]:
        return iter(self.nodes.values())

    def __len__(self) -> int:
        return len(self.nodes)

    def dependents(self) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {key: [] for key in self.nodes}
        for node in self.nodes.values():
            for upstream in set(node.deps.values()):
                result[upstream].append(node.key)
        return result


def build_graph(root: TaskBase, scope: PlanningScope, root_bundle_name: str | None) -> TaskGraph:
    """Declare every task reachable from ``root`` (see the module docstring)."""
    nodes: dict[str, TaskNode] = {}
    root_node = _declare(root, scope, root_bundle_name, is_root=True)
    stack: list[tuple[TaskNode, Iterator[TaskDependency]]] = [(root_node, _task_deps(root_node))]
    visiting = {root_node.key}
    while stack:
        node, pending = stack[-1]
        dependency = next(pending, None)
        if dependency is None:
            stack.pop()
            visiting.discard(node.key)
            nodes[node.key] = node
            continue
        upstream_key = dependency.task.task_signature
        node.deps[dependency.arg_name] = upstream_key
        if upstream_key in nodes:
            continue
        if upstream_key in visiting:
            path = [entry.label for entry, _ in stack]
            start = next(i for i, (entry, _) in enumerate(stack) if entry.key == upstream_key)
            cycle = " -> ".join([*path[start:], stack[start][0].label])
            raise DependencyCycle(f"dependency cycle: {cycle}")
        child = _declare(dependency.task, scope, None, is_root=False)
        visiting.add(child.key)
        stack.append((child, _task_deps(child)))
    _check_names(nodes)
    return TaskGraph(nodes, root_node.key)


def _declare(
    task: TaskBase, scope: PlanningScope, bundle_name: str | None, is_root: bool
) -> TaskNode:
    task._assay_scope = scope
    try:
        task.pipe_requires()
    finally:
        task._assay_scope = None
    if task._assay_requirements and not all(
        isinstance(r, TaskDependency | ExternalInput) for r in task._assay_requirements.values()
    ):
        raise InvalidPipeline(f"{task.describe()}: unknown requirement kind")
    node = TaskNode(
        key=task.task_signature,
        task=task,
        bundle_name=bundle_name or task._assay_bundle_name or task.task_family(),
        code_hash=type(task).task_code_hash(),
        is_root=is_root,
    )
    for requirement in task._assay_requirements.values():
        if isinstance(requirement, ExternalInput):
            node.externals[requirement.arg_name] = requirement.record
    return node


def _task_deps(node: TaskNode) -> Iterator[TaskDependency]:
    for requirement in node.task._assay_requirements.values():
        if isinstance(requirement, TaskDependency):
            yield requirement


def _check_names(nodes: dict[str, TaskNode]) -> None:
    writers: dict[str, TaskNode] = {}
    for node in nodes.values():
        other = writers.setdefault(node.bundle_name, node)
        if other is not node:
            raise DuplicateOutputName(
                f"two tasks in this run would write bundle {node.bundle_name!r}: "
                f"{other.label} and {node.label}; give them different names with "
                "set_bundle_name() in pipe_requires"
            )
