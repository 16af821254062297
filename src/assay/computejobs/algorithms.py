"""The three kinds of algorithm a compute job runs, resolved to what the job needs.

- **service**: a registered service revision (SRUID ``namespace/name:tag``). Its code hash is
  the services' own (BLAKE3 tree over app sources and twine); its publisher is its namespace.
  It runs through ``python -m assay.computejobs.service_main``, which asks the app one question
  built from ``$INPUTS`` and writes the answer under ``$OUTPUTS``.
- **bundle**: a published algorithm bundle (``assay://context/name[@uuid]``): the bundle's files
  are the code, its tags ``entrypoint`` (default ``python $ALGO``), ``language`` and
  ``algorithm_file`` (the file ``$ALGO`` names; default the bundle's only file) say how to run
  it. Its code hash is the bundle's content hash; its publisher is the bundle's owner.
- **raw**: an ``algorithm_meta`` (Ocean's ``AlgorithmMetadata``: ``rawcode``, ``language``,
  ``container.entrypoint``; or the flat ``script`` / ``entrypoint`` / ``language``). Its code
  hash is BLAKE3 over the canonical JSON of code, entrypoint and language.

``$ALGO`` in an entrypoint is the path of the staged algorithm file; ``python``/``python3`` as
the program means this interpreter, so a sandboxed job uses the same Python as the host.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.bundles import operations, views
from assay.bundles.workspace import Workspace
from assay.core import hashing
from assay.core.errors import InvalidInput
from assay.core.manifest import parse_reference
from assay.core.records import BundleRecord
from assay.jobs.policies import AlgorithmKind, AlgorithmRef

ALGORITHM_DIR = "transformations"
DEFAULT_ENTRYPOINT = "python $ALGO"
_PYTHONS = ("python", "python3")


@dataclass(frozen=True)
class Algorithm:
    """A resolved algorithm: its identity for the policy check and how to run it."""

    ref: AlgorithmRef
    entrypoint: str
    language: str = "python"
    #: raw: the code; bundle: the record to stage; service: the folder and SRUID
    rawcode: str | None = None
    bundle: BundleRecord | None = None
    algorithm_file: str = "algorithm"
    service_folder: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> AlgorithmKind:
        return self.ref.kind

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.ref.id,
            "code_hash": self.ref.code_hash,
            "publisher": self.ref.publisher,
            "entrypoint": self.entrypoint,
            "language": self.language,
        }


def raw_algorithm(meta: Any) -> Algorithm:
    """An Algorithm from Ocean-shaped ``AlgorithmMetadata`` (an object with ``as_dictionary``,
    or its dict, with or without the ``meta`` wrapper) or the flat form."""
    if hasattr(meta, "as_dictionary"):
        meta = meta.as_dictionary()
    if not isinstance(meta, Mapping):
        raise InvalidInput(
            f"algorithm_meta: expected a dict with rawcode (or script), language and "
            f"container.entrypoint (or entrypoint), got {type(meta).__name__}"
        )
    body = meta.get("meta", meta)
    container = body.get("container") or {}
    code = body.get("rawcode") or body.get("script")
    if body.get("url") and not code:
        raise InvalidInput(
            "algorithm_meta: url algorithms are not fetched (a job never reaches out for code); "
            "give the code as rawcode"
        )
    if not isinstance(code, str) or not code.strip():
        raise InvalidInput("algorithm_meta: rawcode (or script) is missing or empty")
    entrypoint = str(body.get("entrypoint") or container.get("entrypoint") or DEFAULT_ENTRYPOINT)
    language = str(body.get("language") or "python")
    canonical = json.dumps(
        {"code": code, "entrypoint": entrypoint, "language": language},
        sort_keys=True,
        separators=(",", ":"),
    )
    code_hash = hashing.hash_bytes(canonical.encode())
    return Algorithm(
        ref=AlgorithmRef("raw", "raw", code_hash, ""),
        entrypoint=entrypoint,
        language=language,
        rawcode=code,
        meta=dict(body),
    )


def bundle_algorithm(workspace: Workspace, reference: str) -> Algorithm:
    """An Algorithm from a published algorithm bundle ``assay://context/name[@uuid]``."""
    parsed = parse_reference(reference)
    if parsed.kind != "catalog" or parsed.context is None or parsed.name is None:
        raise InvalidInput(
            f"algorithm {reference!r}: give a service id (namespace/name:tag) or an algorithm "
            "bundle as assay://context/name[@uuid]"
        )
    record = operations.require(workspace, parsed.context, parsed.name, parsed.uuid)
    files = operations.files_of(workspace, record)
    tags = record.tags
    algorithm_file = tags.get("algorithm_file")
    if algorithm_file is None:
        if len(files) != 1:
            raise InvalidInput(
                f"algorithm bundle {reference} has {len(files)} files: tag the one to run with "
                "algorithm_file=PATH"
            )
        algorithm_file = files[0].path
    elif algorithm_file not in {entry.path for entry in files}:
        raise InvalidInput(
            f"algorithm bundle {reference}: its algorithm_file {algorithm_file!r} is not one "
            "of its files"
        )
    return Algorithm(
        ref=AlgorithmRef(
            "bundle", f"assay://{record.context}/{record.name}", record.content_hash, record.owner
        ),
        entrypoint=tags.get("entrypoint", DEFAULT_ENTRYPOINT),
        language=tags.get("language", "python"),
        bundle=record,
        algorithm_file=algorithm_file,
    )


def service_algorithm(sruid: str, folder: Path, code_hash: str, namespace: str) -> Algorithm:
    """An Algorithm for a registered service (resolved by the caller, above the job layer)."""
    return Algorithm(
        ref=AlgorithmRef("service", sruid, code_hash, namespace),
        entrypoint=f"python -m assay.computejobs.service_main {shlex.quote(str(folder))} "
        f"{shlex.quote(sruid)}",
        service_folder=folder,
    )


def stage_algorithm(workspace: Workspace, algorithm: Algorithm, workdir: Path) -> Path | None:
    """Put the algorithm's code under ``workdir/transformations/``; returns ``$ALGO``'s path
    (None for a service, which runs from its own folder)."""
    target_dir = workdir / ALGORITHM_DIR
    if algorithm.kind == "raw":
        target_dir.mkdir(parents=True, exist_ok=True)
        path = target_dir / "algorithm"
        path.write_text(algorithm.rawcode or "", encoding="utf-8")
        return path
    if algorithm.kind == "bundle":
        assert algorithm.bundle is not None
        files = operations.files_of(workspace, algorithm.bundle)
        views.materialize_files(workspace, files, target_dir, record=False)
        return target_dir / algorithm.algorithm_file
    return None


def argv_for(algorithm: Algorithm, algo_path: Path | None) -> list[str]:
    """The command line: the entrypoint with ``$ALGO`` replaced, split like a shell would."""
    entrypoint = algorithm.entrypoint
    if "$ALGO" in entrypoint:
        if algo_path is None:
            raise InvalidInput(f"entrypoint {entrypoint!r} names $ALGO but there is no file")
        entrypoint = entrypoint.replace("$ALGO", shlex.quote(str(algo_path)))
    try:
        argv = shlex.split(entrypoint)
    except ValueError as error:
        raise InvalidInput(f"entrypoint {algorithm.entrypoint!r}: {error}") from None
    if not argv:
        raise InvalidInput("the algorithm's entrypoint is empty")
    if argv[0] in _PYTHONS:
        argv[0] = sys.executable
    return argv


def service_identity(sruid: str) -> tuple[str, Path, str, str]:
    """``(full SRUID, app folder's config folder, current code hash, namespace)`` of a
    registered service (the registry's rules: explicit entries, then ASSAY_SERVICES_PATH)."""
    from assay.services import app_loader, registry

    config = registry.resolve(sruid)
    code_hash = app_loader.code_hash(str(config.app_source_path), str(config.twine_path))
    return config.sruid, config.directory, code_hash, config.namespace


def resolve_algorithm(workspace: Workspace, algorithm: Any, algorithm_meta: Any) -> Algorithm:
    """The job's algorithm from Ocean's two arguments: ``algorithm`` (a service id or an
    algorithm bundle reference) or ``algorithm_meta`` (a raw algorithm) -- exactly one."""
    if (algorithm is None) == (algorithm_meta is None):
        raise InvalidInput(
            "give exactly one of algorithm (a service id or assay://context/name of an "
            "algorithm bundle) and algorithm_meta (a raw algorithm)"
        )
    if algorithm_meta is not None:
        return raw_algorithm(algorithm_meta)
    reference = getattr(algorithm, "dataset", algorithm)  # a ComputeInput names it too
    if not isinstance(reference, str):
        raise InvalidInput(f"algorithm: expected a string id, got {type(reference).__name__}")
    if reference.startswith("assay://"):
        return bundle_algorithm(workspace, reference)
    sruid, folder, code_hash, namespace = service_identity(reference)
    return service_algorithm(sruid, folder, code_hash, namespace)
