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


class NoDownloader(AssayError):
    """``Manifest.download`` was called before a higher layer registered the downloader (the
    core does no I/O; importing ``assay.resources`` or ``assay.services`` registers it)."""

    code = "no_downloader"


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


# -- services and questions (assay.services) --------------------------------------------------
class InvalidTwine(InvalidInput):
    """A twine that is not JSON, breaks the twine schema, or holds an unusable strand schema."""

    code = "invalid_twine"


class InvalidStrand(InvalidInput):
    """Data that fails its twine strand; ``details`` has ``strand``, ``path`` and ``rule``."""

    code = "invalid_strand"


class InvalidMonitorMessage(InvalidStrand):
    code = "invalid_monitor_message"


class MissingCredential(InvalidInput):
    code = "missing_credential"


class InvalidServiceConfig(InvalidInput):
    """An ``assay.yaml`` (or Octue ``octue.yaml``) that cannot be used: unknown keys included."""

    code = "invalid_service_config"


class InvalidApp(InvalidInput):
    """An ``app.py`` that cannot be imported or has neither ``run(analysis)`` nor ``App``."""

    code = "invalid_app"


class ServiceNotFound(NotFound):
    """A service id (``namespace/name:tag``) that no registry entry resolves."""

    code = "service_not_found"


class QuestionNotFound(NotFound):
    code = "question_not_found"


class NotBuiltYet(AssayError):
    """A documented feature whose implementation comes in a later release."""

    code = "not_built_yet"
    exit_code = 2


class ChildError(AssayError):
    """A question to a service failed: its app raised, or its process died, hung, timed out or
    was cancelled. A child exception whose type cannot be rebuilt arrives as this class."""

    code = "child_error"
    exit_code = 8


class ChildCrashed(ChildError):
    """The child process exited without answering (``os._exit``, a signal) or stopped sending
    heartbeats."""

    code = "child_crashed"


class QuestionTimeout(ChildError, TimeoutError):
    """No answer within the question's ``timeout`` (also a ``TimeoutError``, as in Octue)."""

    code = "question_timeout"


class QuestionCancelled(ChildError):
    code = "question_cancelled"


# -- remotes --------------------------------------------------------------------------------
class RemoteNotBound(NotFound):
    """The context has no remote bound to it (``assay remote add``)."""

    code = "remote_not_bound"


class RemoteNotFound(NotFound):
    """The remote's bucket (or shared folder) does not exist."""

    code = "remote_not_found"


class RemoteExists(Conflict):
    """The context already has a different remote; rebinding needs ``force``."""

    code = "remote_exists"


class NotCommitted(Conflict):
    """Only committed bundles can be pushed."""

    code = "not_committed"


class NotLocalized(Conflict):
    """The bundle's files are on its remote only: localize it first."""

    code = "not_localized"


class RemoteObjectCorrupted(BlobCorrupted):
    """An object read from a remote does not match its hash (corrupted or truncated)."""

    code = "remote_object_corrupted"


class RemoteUnavailable(Unavailable):
    """The remote could not be reached (after bounded retries and timeouts)."""

    code = "remote_unavailable"


class RemoteAccessDenied(Unavailable):
    """The remote refused the credentials (or their permissions)."""

    code = "remote_access_denied"


# -- jobs (assay.jobs) ------------------------------------------------------------------------
class JobNotFound(NotFound):
    """No job has this id (or unique id prefix)."""

    code = "job_not_found"


class InvalidTransition(Conflict):
    """An event that the job's state machine does not allow from the job's current state (or a
    transition that lost a race with another process: the message names the state it found)."""

    code = "invalid_transition"


class EnvironmentNotFound(NotFound):
    """A compute environment id that no environments file declares."""

    code = "environment_not_found"


class InvalidEnvironmentConfig(InvalidInput):
    """An ``environments.yaml`` (or the environments of an ``assay.yaml``) that cannot be used;
    the message names the file and the line."""

    code = "invalid_environment_config"


class UnknownStateMachine(NotFound):
    """A job names a state machine that no code registered."""

    code = "unknown_state_machine"


class SandboxUnavailable(Unavailable):
    """An environment asks for ``isolation: sandbox`` and bubblewrap (``bwrap``) cannot run
    here: the job is refused, never run unisolated."""

    code = "sandbox_unavailable"


class JobStopped(AssayError):
    """Raised inside a job's own code (or by ``JobContext.check_stop``) to end the job STOPPED."""

    code = "job_stopped"
    exit_code = 1
