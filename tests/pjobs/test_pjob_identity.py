"""Identity, archive paths, linkage and bad input at creation (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from pjob_helpers import stored

from assay.bundles.workspace import Workspace
from assay.core.errors import (
    InvalidArchivePath,
    InvalidIndexRequest,
    InvalidLinkage,
    PipelineNotFound,
)
from assay.jobs import store
from assay.jobs.ids import job_id
from assay.pipelinejobs import ArchiveIndexRequest, ManagedPipelineJob, ProductIndexRequest
from assay.pjobs.archive import products_root
from assay.pjobs.identity import PIPELINE_NAMESPACE, metadata_uuid, pipeline_uuid
from assay.pjobs.pipelines import Pipeline


def test_pipeline_uuid_is_uuid5_of_its_id(pipeline: Pipeline) -> None:
    assert pipeline.uuid == str(uuid.uuid5(PIPELINE_NAMESPACE, "pipeline:sd2e/tacobot"))
    assert pipeline.uuid == pipeline_uuid("sd2e/tacobot")


def test_same_job_twice_is_the_same_job(workspace: Workspace, pipeline: Pipeline) -> None:
    first = ManagedPipelineJob(workspace, "sd2e/tacobot", measurement_id="m1", data={"k": 1})
    first.setup()
    again = ManagedPipelineJob(workspace, pipeline.uuid, measurement_id=["m1"], data={"k": 1})
    again.setup()
    assert again.uuid == first.uuid
    assert again.archive_path == first.archive_path
    assert len(store.list_jobs(kind="pipelinejob", workspace=workspace)) == 1
    # identity: UUID5 over pipeline uuid + child_of + canonical data
    child_of = [metadata_uuid("measurement", "m1")]
    assert first.uuid == job_id("pipelinejob", pipeline.uuid, child_of, {"k": 1})
    other = ManagedPipelineJob(workspace, "sd2e/tacobot", measurement_id="m1", data={"k": 2})
    other.setup()
    assert other.uuid != first.uuid and other.archive_path != first.archive_path


def test_archive_path_layout(workspace: Workspace, pipeline: Pipeline) -> None:
    job = ManagedPipelineJob(workspace, "sd2e/tacobot", sample_id="s1", data={"a": [1, 2]})
    job.setup()
    parts = job.get_archive_path().split("/")
    assert parts[:4] == ["", "products", "v2", pipeline.uuid.replace("-", "")]
    assert all(re.fullmatch(r"[0-9a-f]{32}", p) for p in parts[4:]) and len(parts) == 6
    folder = products_root(workspace.settings).joinpath(*parts[2:])
    assert folder.is_dir()
    assert job.job is not None and job.job.local_path == str(folder)


def test_instanced_archive_path(workspace: Workspace, pipeline: Pipeline) -> None:
    job = ManagedPipelineJob(workspace, "sd2e/tacobot", True, experiment_id="e1")
    job.setup()
    last = job.get_archive_path().rsplit("/", 1)[1]
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d{8}T\d{6}Z", last), last
    named = ManagedPipelineJob(workspace, "sd2e/tacobot", True, experiment_id="e2", session="run7")
    named.setup()
    assert re.fullmatch(r"run7-\d{8}T\d{6}Z", named.get_archive_path().rsplit("/", 1)[1])


def test_links(workspace: Workspace, pipeline: Pipeline) -> None:
    job = ManagedPipelineJob(
        workspace,
        "sd2e/tacobot",
        experiment_id=["e2", "e1", str(uuid.UUID(int=5))],
        data={
            "inputs": ["assay://ctx/raw@abc", {"nested": "/uploads/x.fcs"}],
            "parameters": {"reference": "https://example.org/genome.fa", "threshold": 3},
        },
        inputs=["s3://bucket/extra.fcs"],
        generated_by="0b4c6f0e-1111-5222-8333-444455556666",
    ).setup()
    record = job.job
    assert record is not None
    assert record.linkage_kind == "experiment"
    assert list(record.child_of) == sorted(
        [
            metadata_uuid("experiment", "e1"),
            metadata_uuid("experiment", "e2"),
            str(uuid.UUID(int=5)),
        ]
    )
    assert set(record.acted_on) == {
        "assay://ctx/raw@abc",
        "/uploads/x.fcs",
        "s3://bucket/extra.fcs",
    }
    assert record.acted_using == ("https://example.org/genome.fa",)
    assert record.generated_by == (pipeline.uuid, "0b4c6f0e-1111-5222-8333-444455556666")
    assert job.refs_from_data_dict(store="references") == ["https://example.org/genome.fa"]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({}, InvalidLinkage, "none was given"),
        (
            {"experiment_id": "e1", "sample_id": "s1"},
            InvalidLinkage,
            "got sample_id and experiment_id",
        ),
        ({"measurement_id": ["m1", ""]}, InvalidLinkage, "non-empty"),
        ({"measurement_id": "m1", "pipeline": "nope/unknown"}, PipelineNotFound, "register"),
        (
            {"measurement_id": "m1", "archive_patterns": [ArchiveIndexRequest(["ok"])]}
            | {"product_patterns": [{"patterns": ["(unclosed"], "derived_from": []}]},
            InvalidIndexRequest,
            "not a valid regular expression",
        ),
        ({"measurement_id": "m1", "archive_path": "/etc/passwd"}, InvalidArchivePath, "outside"),
        (
            {"measurement_id": "m1", "archive_path": "/products/v2/../../../etc"},
            InvalidArchivePath,
            "'..'",
        ),
        ({"measurement_id": "m1", "archive_path": "products/x"}, InvalidArchivePath, "absolute"),
        ({"measurement_id": "m1", "archive_path": "/products"}, InvalidArchivePath, "root itself"),
    ],
)
def test_bad_input_writes_nothing(
    workspace: Workspace,
    pipeline: Pipeline,
    kwargs: dict[str, object],
    error: type[Exception],
    message: str,
) -> None:
    before = stored(workspace)
    kwargs = dict(kwargs)  # the parameter is shared by the SQLite and PostgreSQL runs
    reference = kwargs.pop("pipeline", "sd2e/tacobot")
    with pytest.raises(error, match=re.escape(message)):
        job = ManagedPipelineJob(workspace, reference, **kwargs)  # type: ignore[arg-type]
        job.setup()
    assert stored(workspace) == before


def test_invalid_regex_in_a_request_object() -> None:
    with pytest.raises(InvalidIndexRequest, match="not a valid regular expression"):
        ProductIndexRequest(["[a-"], derived_from=["x"])


def test_explicit_archive_path_under_the_root(workspace: Workspace, pipeline: Pipeline) -> None:
    root = products_root(workspace.settings)
    job = ManagedPipelineJob(
        workspace, "sd2e/tacobot", measurement_id="m9", archive_path=str(root / "custom" / "m9")
    ).setup()
    assert job.get_archive_path() == "/products/custom/m9"
    assert (root / "custom" / "m9").is_dir()
    # a second job may not take the same folder
    before = stored(workspace)
    with pytest.raises(InvalidArchivePath, match="already belongs"):
        ManagedPipelineJob(
            workspace, "sd2e/tacobot", measurement_id="m10", archive_path="/products/custom/m9"
        ).setup()
    assert stored(workspace) == before


def test_no_folder_when_setup_archive_path_is_false(
    workspace: Workspace, pipeline: Pipeline, tmp_path: Path
) -> None:
    job = ManagedPipelineJob(
        workspace, "sd2e/tacobot", measurement_id="m1", setup_archive_path=False
    ).setup()
    assert job.job is not None and not Path(job.job.local_path).exists()
