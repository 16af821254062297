"""Committing a service's output datasets as bundles, with their provenance.

Rule for where they go: the context in ``ASSAY_OUTPUT_CONTEXT`` when set (``assay run -c``),
else the service's ``output_location`` when it is ``assay://<context>`` (created if missing),
else the context ``services`` (created on first use). Each local output
dataset becomes a bundle named ``<service name>.<dataset key>`` with:

- ``processing_name`` = the service revision id (SRUID);
- ``code_version`` = ``{"sruid", "code_hash", git commit/branch/dirty of the app folder}``;
- ``params`` = the input values (a non-object value is stored as ``{"input_values": value}``);
- tags ``service_id``, ``question_uuid``, ``dataset_key`` and ``generated_by``
  (``<sruid>#<code hash>``: what made it, recorded on the bundle, not as a link);
- links ``acted_on`` -> each input bundle (catalog references in the input manifest) and
  ``acted_using`` -> each configuration-manifest bundle, so ``assay lineage`` shows the inputs.

Files keep their labels and tags in a root ``.octue`` metadata file inside the bundle, which
``Dataset(path=...)`` reads back. A dataset that is already a catalog reference or a remote URL
is passed through as it is.

Every output dataset of one question is committed in ONE catalog transaction (blobs first):
in process by ``commit_outputs``; for a question answered by a worker, by the asker while the
question's job is PUBLISHING, together with its final transition (``assay.services.publishing``).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.core.errors import InvalidInput, InvalidServiceConfig
from assay.core.manifest import Manifest
from assay.core.records import Dependency

DEFAULT_CONTEXT = "services"


#: Set (e.g. by ``assay run -c``) to commit output datasets to this context instead.
OUTPUT_CONTEXT_VARIABLE = "ASSAY_OUTPUT_CONTEXT"


def output_context(output_location: str | None) -> str:
    """The context output datasets are committed to (see the module's rule); the asker's
    ``ASSAY_OUTPUT_CONTEXT`` comes first (a pooled worker receives the asker's environment
    with each question)."""
    override = os.environ.get(OUTPUT_CONTEXT_VARIABLE)
    if override:
        from assay.core.names import check_context_name

        return check_context_name(override)
    if output_location is None:
        return DEFAULT_CONTEXT
    location = output_location.strip()
    if location.startswith("assay://"):
        context = location[len("assay://") :].strip("/")
        if context and "/" not in context:
            from assay.core.names import check_context_name

            return check_context_name(context)
    raise InvalidServiceConfig(
        f"output_location {output_location!r}: use assay://<context> (output datasets are "
        "committed as bundles in that context)"
    )


def input_dependencies(manifest: Manifest | None, kind: str, workspace: Any) -> list[Dependency]:
    """``kind`` links to the bundles a manifest's catalog references name (latest if no uuid)."""
    from assay.bundles import operations

    if manifest is None:
        return []
    found: list[Dependency] = []
    for key, reference in manifest.references.items():
        if reference.kind != "catalog":
            continue
        assert reference.context is not None
        record = operations.require(workspace, reference.context, reference.name, reference.uuid)
        found.append(Dependency(record.uuid, kind, key))
    return found


@dataclass(frozen=True)
class PreparedOutputs:
    """Output datasets whose blobs are stored and whose bundle rows are not written yet."""

    manifest: Manifest  # the output manifest with catalog references
    bundles: dict[str, str]  # dataset key -> bundle uuid
    prepared: list[Any]  # assay.bundles.batch.PreparedBundle


def prepare_outputs(
    output_manifest: Manifest,
    *,
    service_name: str,
    sruid: str,
    code_version: dict[str, Any],
    question_uuid: str,
    input_values: Any,
    input_manifest: Manifest | None,
    configuration_manifest: Manifest | None,
    output_location: str | None,
    workspace: Any,
) -> PreparedOutputs:
    """Store each local output dataset's files and build its bundle (see the module's rules);
    nothing is in the catalog until ``write_outputs``. Hold ``workspace.writing()`` from
    here until that transaction commits."""
    from assay.bundles import operations
    from assay.bundles.batch import prepare_bundle
    from assay.bundles.ingest import scan

    context = output_context(output_location)
    local_keys = [
        key
        for key, reference in output_manifest.references.items()
        if reference.kind in ("local", "dataset")
        or (reference.kind == "url" and reference.protocol == "file")
    ]
    if not local_keys:
        return PreparedOutputs(output_manifest, {}, [])
    operations.create_context(workspace, context)
    dependencies = input_dependencies(input_manifest, "acted_on", workspace)
    dependencies += input_dependencies(configuration_manifest, "acted_using", workspace)
    params = input_values if isinstance(input_values, dict) else {"input_values": input_values}
    code_hash = str(code_version.get("code_hash", ""))
    tags = {
        "service_id": sruid,
        "question_uuid": question_uuid,
        "generated_by": f"{sruid}#{code_hash[:16]}",
    }
    datasets: dict[str, Any] = dict(output_manifest.references)
    committed: dict[str, str] = {}
    prepared: list[Any] = []
    for key in local_keys:
        dataset = output_manifest.get_dataset(key)
        with tempfile.TemporaryDirectory(prefix="assay-outputs-") as scratch:
            sources: dict[str, Path] = {}
            for datafile in dataset.files:
                if datafile.local_path is None:
                    raise InvalidInput(
                        f"output_manifest.datasets.{key}: file {datafile.path} is remote; an "
                        "output dataset's files must be local files"
                    )
                assert datafile.relative_path is not None
                sources[datafile.relative_path] = Path(datafile.local_path)
            metadata = _metadata(dataset)
            if metadata is not None:
                path = os.path.join(scratch, ".octue")
                with open(path, "w", encoding="utf-8") as handle:
                    json.dump(metadata, handle, indent=1, sort_keys=True)
                sources[".octue"] = Path(path)
            bundle = prepare_bundle(
                workspace,
                context,
                f"{service_name}.{key}",
                scan(sources),
                tags={**tags, "dataset_key": key},
                dependencies=dependencies,
                params=params,
                processing_name=sruid,
                code_version=code_version,
            )
        prepared.append(bundle)
        committed[key] = bundle.record.uuid
        datasets[key] = f"assay://{context}/{bundle.record.name}@{bundle.record.uuid}"
    manifest = Manifest(
        datasets={k: (v if isinstance(v, str) else v.to_primitive()) for k, v in datasets.items()},
        id=output_manifest.id,
    )
    return PreparedOutputs(manifest, committed, prepared)


def write_outputs(conn: Any, workspace: Any, outputs: PreparedOutputs) -> list[str]:
    """Write every prepared output bundle in the caller's transaction; pruned uuids."""
    from assay.bundles.batch import insert_bundles

    return insert_bundles(conn, workspace, outputs.prepared)


def commit_outputs(
    output_manifest: Manifest,
    *,
    service_name: str,
    sruid: str,
    code_version: dict[str, Any],
    question_uuid: str,
    input_values: Any,
    input_manifest: Manifest | None,
    configuration_manifest: Manifest | None,
    output_location: str | None,
) -> tuple[Manifest, dict[str, str]]:
    """Commit every local output dataset in ONE transaction (a failure leaves none); returns
    the manifest of catalog references and ``{key: bundle uuid}``."""
    from assay.bundles.batch import remove_views
    from assay.bundles.workspace import open_workspace

    workspace = open_workspace()
    with workspace.writing():
        outputs = prepare_outputs(
            output_manifest,
            service_name=service_name,
            sruid=sruid,
            code_version=code_version,
            question_uuid=question_uuid,
            input_values=input_values,
            input_manifest=input_manifest,
            configuration_manifest=configuration_manifest,
            output_location=output_location,
            workspace=workspace,
        )
        if not outputs.prepared:
            return outputs.manifest, {}
        with workspace.write() as conn:
            pruned = write_outputs(conn, workspace, outputs)
    remove_views(workspace, pruned)
    return outputs.manifest, outputs.bundles


def _metadata(dataset: Any) -> dict[str, Any] | None:
    files = []
    for datafile in dataset.files:
        if datafile.tags or datafile.labels or datafile.timestamp is not None:
            files.append(
                {
                    "relative_path": datafile.relative_path,
                    "tags": dict(datafile.tags),
                    "labels": sorted(datafile.labels),
                    "timestamp": datafile.timestamp,
                }
            )
    if not files and not dataset.tags and not dataset.labels and dataset.name is None:
        return None
    return {
        "dataset": {
            "name": dataset.name,
            "tags": dict(dataset.tags),
            "labels": sorted(dataset.labels),
            "files": files,
        }
    }
