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


class StoreCatalogMismatch(Conflict):
    """The blob store and the catalog are not a pair (another catalog, or an empty one while
    the store holds blobs): writing or collecting would lose data. ``assay doctor`` explains."""

    code = "store_catalog_mismatch"


class GcRefused(Conflict):
    """``gc`` would remove more than half of the store's blobs: refused without ``force``."""

    code = "gc_refused"


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


class InvalidOutput(InvalidStrand, ChildError):
    """The app's output values or output manifest do not meet the twine: the app's fault, so
    the command line exits 8 as for any failed question. Also an ``InvalidStrand`` (``details``
    has ``strand``, ``path`` and ``rule``) and a ``ChildError``."""

    code = "invalid_output"
    exit_code = 8


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


# -- pipelines ------------------------------------------------------------------------------
class InvalidParameter(InvalidInput):
    """A task parameter that is unknown, missing, or of the wrong type."""

    code = "invalid_parameter"


class InvalidPipeline(InvalidInput):
    """A pipeline that cannot be planned: a bad dependency declaration, or two tasks of one
    run writing the same bundle name."""

    code = "invalid_pipeline"


class DependencyCycle(InvalidPipeline):
    """Tasks that (transitively) require themselves; the message names the path."""

    code = "dependency_cycle"


class DuplicateOutputName(InvalidPipeline):
    code = "duplicate_output_name"


class ParamNotSerializable(InvalidPipeline):
    """A parameter value with no JSON form, in a run that must send it to a subprocess."""

    code = "param_not_serializable"


class TaskImportFailed(InvalidInput):
    """``module:Task`` given on the command line that does not import or is not a task."""

    code = "task_import_failed"


class ExternalBundleNotFound(BundleNotFound):
    """An ``add_external_dependency`` that no bundle in the context satisfies."""

    code = "external_bundle_not_found"


class TaskFailed(AssayError):
    """A pipeline task raised (or returned data that cannot be stored). The message names the
    task; ``details["traceback"]`` holds its traceback. Outputs of tasks that finished stay
    cached, so the next run resumes."""

    code = "task_failed"
    exit_code = 10


class PipelineInterrupted(AssayError):
    """The run was stopped (Ctrl-C): running tasks are STOPPED, nothing was half-written."""

    code = "interrupted"
    exit_code = 130


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


# -- compute-to-data (assay.compute, assay.computejobs, assay.jobs.policies) -------------------
class AccessDenied(AssayError):
    """The caller may not do this: a dataset's access policy or a job's owner says no."""

    code = "access_denied"
    exit_code = 9


class NotConsumable(AccessDenied):
    """A dataset's access policy refuses this consumer or this algorithm. ``details`` holds the
    consumability ``consumable_code`` (e.g. ``NOT_IN_ALLOW_LIST``), its number and the
    ``rule`` that decided."""

    code = "not_consumable"


class NotJobOwner(AccessDenied):
    """A consumer asked about a compute job another consumer started."""

    code = "not_job_owner"


class ResultNotFound(NotFound):
    """A compute job result index outside the job's result list."""

    code = "result_not_found"


# -- pipelines and managed pipeline jobs (assay.pjobs) ---------------------------------------
class InvalidPipelineRegistration(InvalidInput):
    """A pipeline registration file that cannot be used (not JSON/YAML, missing id, ...)."""

    code = "invalid_pipeline_registration"


class PipelineNotFound(NotFound):
    code = "pipeline_not_found"


class PipelineJobNotFound(NotFound):
    """No managed pipeline job with this uuid (or the job is of another kind)."""

    code = "pipelinejob_not_found"


class InvalidLinkage(InvalidInput):
    """None, or more than one kind, of experiment/sample/measurement ids links the job."""

    code = "invalid_linkage"


class InvalidArchivePath(InvalidInput):
    """An archive path outside the products root, or with a ``..`` component."""

    code = "invalid_archive_path"


class InvalidIndexRequest(InvalidInput):
    """An index request whose pattern is not a valid regular expression (or is malformed)."""

    code = "invalid_index_request"


class InvalidEvent(InvalidInput):
    """A webhook body that is not a JSON object or names an unknown event."""

    code = "invalid_event"


class PayloadTooLarge(InvalidInput):
    code = "payload_too_large"


class AuthenticationRequired(AssayError):
    """No token where one is required (HTTP 401)."""

    code = "authentication_required"
    exit_code = 9


class PermissionDenied(AccessDenied):
    """A token that is wrong, forged, or not allowed to do this (HTTP 403)."""

    code = "permission_denied"


class UnsafeReset(Conflict):
    """A reset that would delete files outside the job's own archive path."""

    code = "unsafe_reset"


class DeliveryConflict(Conflict):
    """A webhook event id reused with another body, or one still being applied."""

    code = "delivery_conflict"


class IndexingFailed(AssayError):
    """Indexing a job's archive failed; the job is FAILED with the reason."""

    code = "indexing_failed"


# -- scale-out on Dask --------------------------------------------------------------------------
class SchedulerUnreachable(Unavailable):
    """A ``dask`` environment's scheduler (or cluster) cannot be reached within its timeout."""

    code = "scheduler_unreachable"


class WorkerNotReady(Unavailable):
    """The workers of a ``dask`` environment cannot run the work: a task module they cannot
    import, or no credentials for the context's remote (found by a probe at submit time)."""

    code = "worker_not_ready"


class ParamNotPicklable(InvalidInput):
    """A job's or task's parameter cannot be pickled, so it cannot be sent to a Dask worker."""

    code = "param_not_picklable"


class ContainerEngineMissing(Unavailable):
    """``assay build`` found no container engine (docker, podman), or its build failed."""

    code = "container_engine_missing"


class ImageBuildFailed(Unavailable):
    """The container engine ran but the image build failed (its own output says why)."""

    code = "image_build_failed"


# -- API tokens (assay.auth): the server answers 401 / 403 with these codes --------------------
class TokenInvalid(AuthenticationRequired):
    """A bearer token that is missing, malformed, unknown or whose secret does not match."""

    code = "token_invalid"


class TokenExpired(AuthenticationRequired):
    code = "token_expired"


class TokenRevoked(AuthenticationRequired):
    code = "token_revoked"


class InsufficientScope(PermissionDenied):
    """A valid token whose scopes do not include the one the action needs."""

    code = "insufficient_scope"


class TokenNotFound(NotFound):
    code = "token_not_found"
