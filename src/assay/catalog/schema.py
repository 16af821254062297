"""The catalog's one schema, as SQLAlchemy Core tables (migrations in ``migrations/``).

Times are UTC seconds since the epoch (floats): the same type and ordering on SQLite and
PostgreSQL. JSON documents are stored as text in canonical form.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

contexts = Table(
    "contexts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("created", Float, nullable=False),
    Column("remote_context", String(128), nullable=True),
    Column("remote_url", String(1024), nullable=True),
    Column("remote_options", Text, nullable=True),
    UniqueConstraint("name", name="uq_contexts_name"),
)

bundles = Table(
    "bundles",
    metadata,
    Column("uuid", String(36), primary_key=True),
    Column(
        "context_id",
        Integer,
        ForeignKey("contexts.id", ondelete="CASCADE", name="fk_bundles_context"),
        nullable=False,
    ),
    Column("name", String(128), nullable=False),
    Column("processing_name", String(256), nullable=False),
    Column("owner", String(128), nullable=False, default=""),
    Column("created", Float, nullable=False),
    Column("committed", Boolean, nullable=False, default=False),
    Column("content_hash", String(64), nullable=False),
    Column("presentation", String(32), nullable=False),
    Column("data", Text, nullable=False),
    Column("params", Text, nullable=False, default="{}"),
    Column("code_version", Text, nullable=False, default="{}"),
    Column("start_time", Float, nullable=True),
    Column("stop_time", Float, nullable=True),
    Column("file_count", Integer, nullable=False, default=0),
    Column("total_size", BigInteger, nullable=False, default=0),
    Index("ix_bundles_context_name_created", "context_id", "name", "created"),
    Index("ix_bundles_context_created", "context_id", "created"),
    # Pipelines find a task's output by processing name (migration 0007).
    Index("ix_bundles_context_processing", "context_id", "processing_name", "created"),
)

bundle_files = Table(
    "bundle_files",
    metadata,
    Column(
        "bundle_uuid",
        String(36),
        ForeignKey("bundles.uuid", ondelete="CASCADE", name="fk_bundle_files_bundle"),
        primary_key=True,
    ),
    Column("path", String(1024), primary_key=True),
    Column("blob_hash", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Index("ix_bundle_files_blob_hash", "blob_hash"),
)

tags = Table(
    "tags",
    metadata,
    Column(
        "bundle_uuid",
        String(36),
        ForeignKey("bundles.uuid", ondelete="CASCADE", name="fk_tags_bundle"),
        primary_key=True,
    ),
    Column("key", String(128), primary_key=True),
    Column("value", Text, nullable=False),
    Index("ix_tags_key_value", "key", "value"),
)

# A typed provenance edge: ``bundle_uuid`` --kind--> ``target_uuid``. The target has no foreign
# key: a forced removal leaves the edge so lineage can report the missing upstream.
links = Table(
    "links",
    metadata,
    Column(
        "bundle_uuid",
        String(36),
        ForeignKey("bundles.uuid", ondelete="CASCADE", name="fk_links_bundle"),
        primary_key=True,
    ),
    Column("target_uuid", String(36), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("arg_name", String(128), primary_key=True, default=""),
    Index("ix_links_target", "target_uuid"),
)

LINK_KINDS = ("depends_on", "generated_by", "child_of", "acted_on", "acted_using", "derived_from")

# -- remotes (migration 0002) -----------------------------------------------------------------
# A context may be bound to one remote: ``remote_url`` (s3://, file://, ...) holding the remote
# context ``remote_context``; ``remote_options`` is JSON (endpoint URL and the like, never
# secrets). These columns live on ``contexts`` (see migration 0002).

# Which bundles a remote holds, as far as this catalog knows: written when a push completes
# (``state="pushed"``) or a pull brings the bundle in (``state="pulled"``).
remote_bundles = Table(
    "remote_bundles",
    metadata,
    Column(
        "bundle_uuid",
        String(36),
        ForeignKey("bundles.uuid", ondelete="CASCADE", name="fk_remote_bundles_bundle"),
        primary_key=True,
    ),
    Column("remote_url", String(1024), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("at", Float, nullable=False),
)

# -- the store this catalog is bound to (migration 0003) ---------------------------------------
# Key/value facts about the catalog itself; ``store_id`` is the id shared with the blob store's
# ``STORE_ID`` file (see bundles/binding.py).
meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# -- jobs (migration 0004) --------------------------------------------------------------------
# One row per job of any kind (question, compute, pipeline task, managed pipeline job). ``state``
# moves only through guarded updates (``UPDATE ... WHERE state IN (:sources)``, see
# assay.jobs.store); ``last_seq`` is the sequence number of the job's newest event, bumped in the
# same statement that writes the event, so event numbers are allocated inside the transaction.
jobs = Table(
    "jobs",
    metadata,
    Column("job_id", String(36), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("machine", String(64), nullable=False),
    Column("state", String(32), nullable=False),
    Column("state_code", Integer, nullable=False),
    Column("environment", String(128), nullable=False),
    Column("owner", String(256), nullable=False, default=""),
    Column("spec", Text, nullable=False, default="{}"),  # JSON
    Column("result", Text, nullable=True),  # JSON
    Column("error", Text, nullable=True),
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
    Column("started", Float, nullable=True),
    Column("finished", Float, nullable=True),
    Column("last_seen", Float, nullable=True),
    Column("pid", Integer, nullable=True),
    Column("pgid", Integer, nullable=True),
    Column("host", String(255), nullable=True),
    Column("workdir", String(4096), nullable=True),
    Column("stop_requested", Boolean, nullable=False, default=False),
    Column("parent_job_id", String(36), nullable=True),
    Column("launch", Text, nullable=True),  # JSON: how an executor starts it (argv, env, ...)
    Column("last_seq", Integer, nullable=False, default=0),
    Index("ix_jobs_kind_created", "kind", "created"),
    Index("ix_jobs_state", "state"),
    Index("ix_jobs_environment_state", "environment", "state"),
    Index("ix_jobs_parent", "parent_job_id"),
    Index("ix_jobs_created", "created"),
)

# Every event of a job: transitions (``event``, ``from_state``, ``to_state``), logs, monitor
# messages and a kind's own types. Heartbeats are not events (they update ``jobs.last_seen``).
job_events = Table(
    "job_events",
    metadata,
    Column(
        "job_id",
        String(36),
        ForeignKey("jobs.job_id", ondelete="CASCADE", name="fk_job_events_job"),
        primary_key=True,
    ),
    Column("seq", Integer, primary_key=True),  # the primary key makes (job_id, seq) unique
    Column("at", Float, nullable=False),
    Column("type", String(32), nullable=False),
    Column("event", String(64), nullable=False, default=""),
    Column("from_state", String(32), nullable=True),
    Column("to_state", String(32), nullable=True),
    Column("payload", Text, nullable=False, default="{}"),  # JSON
)

# -- compute-to-data access policies (migration 0005) -----------------------------------------
# One policy per bundle name in a context (every version of the name): ``access`` is
# ``download`` or ``compute``. The list columns are JSON arrays; ``["*"]`` allows all and an
# empty array allows none (see assay.jobs.policies).
dataset_policies = Table(
    "dataset_policies",
    metadata,
    Column(
        "context_id",
        Integer,
        ForeignKey("contexts.id", ondelete="CASCADE", name="fk_dataset_policies_context"),
        primary_key=True,
    ),
    Column("name", String(128), primary_key=True),
    Column("access", String(16), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("allow_raw_algorithm", Boolean, nullable=False, default=False),
    Column("allow_network", Boolean, nullable=False, default=False),
    Column("trusted_algorithms", Text, nullable=False, default="[]"),  # [{"id", "code_hash"}]
    Column("trusted_publishers", Text, nullable=False, default="[]"),
    Column("allow_consumers", Text, nullable=False, default='["*"]'),
    Column("deny_consumers", Text, nullable=False, default="[]"),
    Column("publisher", String(128), nullable=False, default=""),
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
)

# -- pipelines and managed pipeline jobs (migration 0006) -------------------------------------
# A registered pipeline: ``uuid`` is UUID5 of its ``pipeline_id``; ``document`` is the whole
# registration (JSON: name, version, description, accepts, agent, ...).
pipelines = Table(
    "pipelines",
    metadata,
    Column("uuid", String(36), primary_key=True),
    Column("pipeline_id", String(256), nullable=False),
    Column("name", String(256), nullable=False),
    Column("version", String(64), nullable=False),
    Column("document", Text, nullable=False),  # JSON
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
    UniqueConstraint("pipeline_id", name="uq_pipelines_pipeline_id"),
)

# The side table of a managed pipeline job (kind "pipelinejob" in ``jobs``): what the job layer
# does not know. ``archive_path`` is the logical path (``/products/v2/...``), unique so two jobs
# never share a directory; ``deleted`` hides a job (admin ``delete``) without touching files.
pipelinejobs = Table(
    "pipelinejobs",
    metadata,
    Column("job_id", String(36), primary_key=True),
    Column("pipeline_uuid", String(36), nullable=False),
    Column("archive_path", String(1024), nullable=False),
    Column("created", Float, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Index("ix_pipelinejobs_pipeline", "pipeline_uuid"),
    UniqueConstraint("archive_path", name="uq_pipelinejobs_archive_path"),
)

# Webhook deliveries with an event id: a replay (same id, same body) is applied once.
# ``status`` is "claimed" while the event is being applied, "applied" once it is (``seq`` is
# the job event it produced).
pipelinejob_deliveries = Table(
    "pipelinejob_deliveries",
    metadata,
    Column("job_id", String(36), primary_key=True),
    Column("event_id", String(128), primary_key=True),
    Column("body_hash", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("seq", Integer, nullable=True),
    Column("at", Float, nullable=False),
)

# -- API tokens (migration 0009) ----------------------------------------------------------------
# A bearer token is ``assay_<token_id>_<secret>``; only the SHA-256 of the whole token is kept.
# ``scopes`` is a comma-separated sorted list of read/write/admin.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_id", String(32), primary_key=True),
    Column("owner", String(128), nullable=False),
    Column("name", String(128), nullable=False, default=""),
    Column("scopes", String(64), nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("created", Float, nullable=False),
    Column("expires", Float, nullable=True),
    Column("revoked", Float, nullable=True),
    Column("last_used", Float, nullable=True),
    Index("ix_api_tokens_owner", "owner"),
)

# -- questions to services (migration 0008: questions are jobs of kind "question") --------------
# The question's side of its job row: what a question list filters on, and what only a question
# has. Inputs are in ``jobs.spec``, outputs in ``jobs.result``, the state in ``jobs.state``, the
# events in ``job_events``.
question_jobs = Table(
    "question_jobs",
    metadata,
    Column(
        "job_id",
        String(36),
        ForeignKey("jobs.job_id", ondelete="CASCADE", name="fk_question_jobs_job"),
        primary_key=True,
    ),
    Column("service_id", String(256), nullable=False),  # namespace/name:tag (SRUID)
    Column("backend", String(32), nullable=False),
    Column("parent_question_uuid", String(36), nullable=True),
    Column("originator_question_uuid", String(36), nullable=True),
    Column("error", Text, nullable=True),  # JSON: type, message, traceback (+ crashed)
    Column("details", Text, nullable=False, default="{}"),  # JSON: anything else
    Index("ix_question_jobs_service", "service_id"),
    Index("ix_question_jobs_parent", "parent_question_uuid"),
    Index("ix_question_jobs_originator", "originator_question_uuid"),
)
