"""One error hierarchy for every user-facing failure.

Each class has a stable ``code`` (used by the HTTP API and ``--json`` output) and an ``exit_code``
(used by the CLI). Messages say what was wrong and, where it helps, what to do next.
"""

from __future__ import annotations

from typing import Any


class AssayError(Exception):
    """Base of every error Assay reports to a user."""

    code = "assay_error"
    exit_code = 1

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: Extra machine-readable fields for ``--json`` and HTTP problem bodies.
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        return self.message


class InvalidInput(AssayError):
    """The caller passed something malformed (a bad name, tag, path, JSON, option)."""

    code = "invalid_input"
    exit_code = 2


class NoCurrentContext(InvalidInput):
    """A command was given no context and no current context is set."""

    code = "no_current_context"


class InvalidName(InvalidInput):
    code = "invalid_name"


class InvalidTag(InvalidInput):
    code = "invalid_tag"


class InvalidLabel(InvalidInput):
    code = "invalid_label"


class InvalidManifest(InvalidInput):
    code = "invalid_manifest"


class LocalFilesNotAllowed(InvalidInput):
    code = "local_files_not_allowed"


class PathNotFound(InvalidInput):
    code = "path_not_found"


class UnreadableFile(InvalidInput):
    code = "unreadable_file"


class NotFound(AssayError):
    code = "not_found"
    exit_code = 3


class ContextNotFound(NotFound):
    code = "context_not_found"


class BundleNotFound(NotFound):
    code = "bundle_not_found"


class FileNotInFilterSet(NotFound):
    code = "file_not_found"


class DatasetNotInManifest(NotFound, KeyError):
    """Also a KeyError, so a manifest's dataset view behaves as a mapping (``get``, ``in``)."""

    code = "dataset_not_in_manifest"


class Conflict(AssayError):
    code = "conflict"
    exit_code = 4


class ContextExists(Conflict):
    code = "context_exists"


class AmbiguousReference(Conflict):
    code = "ambiguous_reference"


class MultipleFilesFound(Conflict):
    code = "multiple_files_found"


class HasDependents(Conflict):
    code = "has_dependents"


class UnpushedBundles(Conflict):
    code = "unpushed_bundles"


class BundleClosed(Conflict):
    code = "bundle_closed"


class IntegrityError(AssayError):
    code = "integrity_error"
    exit_code = 5


class BlobCorrupted(IntegrityError):
    code = "blob_corrupted"


class BlobMissing(IntegrityError):
    code = "blob_missing"


class VerificationFailed(IntegrityError):
    """``verify`` found missing or corrupted blobs; ``details`` lists them."""

    code = "verification_failed"


class Unavailable(AssayError):
    """A backing service (catalog database, object store) could not be reached or used."""

    code = "unavailable"
    exit_code = 6


class CatalogUnavailable(Unavailable):
    code = "catalog_unavailable"


class StorageFull(Unavailable):
    code = "storage_full"


class StorageError(Unavailable):
    code = "storage_error"


class MissingExtra(AssayError):
    code = "missing_extra"
    exit_code = 7
