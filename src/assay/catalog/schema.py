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
