"""The Analysis an app sees: validated configuration and inputs in, outputs set on it.

An app reads ``configuration_values``, ``configuration_manifest``, ``input_values``,
``input_manifest`` and ``children`` (key -> ``Child``), and sets ``output_values`` and
``output_manifest``, exactly as in Octue. As Octue 0.69 does, when the twine has an
``output_manifest`` strand, ``output_manifest`` starts as a manifest with an empty ``Dataset``
per declared key, so ``analysis.output_manifest.datasets["key"] = Dataset(path=...)`` works;
datasets the app leaves empty are dropped when the outputs are finalised (a required one is then
reported missing). Output values or an output manifest that break the twine raise
``InvalidOutput`` (the app's fault: exit 8 on the command line). ``send_monitor_message`` validates a message against the
twine's ``monitor_message_schema`` and passes it to whoever asked the question. ``output_dir``
is a fresh folder per analysis for the files of output datasets; the runner commits output
datasets as bundles and then removes it.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import uuid as uuid_module
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any

from assay.core import hashing
from assay.core.dataset import Dataset
from assay.core.errors import InvalidInput, InvalidOutput
from assay.core.manifest import Manifest
from assay.services.twine import Twine

logger = logging.getLogger(__name__)

MonitorHandler = Callable[[Any], None]


class Analysis:
    """One run of a service's app on one question."""

    def __init__(
        self,
        twine: Twine,
        configuration_values: Any = None,
        configuration_manifest: Any = None,
        input_values: Any = None,
        input_manifest: Any = None,
        children: Mapping[str, Any] | None = None,
        output_location: str | None = None,
        handle_monitor_message: MonitorHandler | None = None,
        id: str | None = None,
        service_id: str | None = None,
    ) -> None:
        self.twine = twine
        self.id = id or str(uuid_module.uuid4())
        self.service_id = service_id
        self.configuration_values = configuration_values
        self.configuration_manifest = configuration_manifest
        self.input_values = input_values
        self.input_manifest = input_manifest
        self.children: dict[str, Any] = dict(children or {})
        self.output_values: Any = None
        declared = twine.manifests.get("output_manifest")
        self.output_manifest: Any = OutputManifest(list(declared)) if declared else None
        self.output_location = output_location
        #: ``{dataset key: bundle uuid}`` of the output datasets committed by the runner.
        self.output_bundles: dict[str, str] = {}
        self._handle_monitor_message = handle_monitor_message
        self._output_dir: str | None = None
        self._periodic: list[threading.Event] = []
        self._finalised = False
        self.configuration_values_hash = _values_hash(configuration_values)
        self.input_values_hash = _values_hash(input_values)

    # -- outputs ----------------------------------------------------------------------------
    @property
    def output_dir(self) -> str:
        """A fresh folder (made on first use) for this analysis's output files."""
        if self._output_dir is None:
            self._output_dir = tempfile.mkdtemp(prefix=f"assay-analysis-{self.id[:8]}-")
        return self._output_dir

    @property
    def finalised(self) -> bool:
        return self._finalised

    def finalise(self, *args: Any, **kwargs: Any) -> None:
        """Validate the output values and manifest against the twine now.

        Octue apps call this at the end of ``run``; the runner calls it after ``run`` returns
        whether the app did or not, then commits output datasets (arguments naming an upload
        location are accepted and ignored: outputs go to the catalog, see ``output_location``).
        """
        if isinstance(self.output_manifest, OutputManifest):
            self.output_manifest = self.output_manifest.filled()
        try:
            self.twine.validate_output_values(self.output_values)
            self.twine.validate_manifest("output_manifest", self.output_manifest)
        except InvalidInput as error:
            raise as_invalid_output(error) from None
        self._finalised = True

    # -- monitor messages -------------------------------------------------------------------
    def send_monitor_message(self, data: Any) -> None:
        """Validate ``data`` against ``monitor_message_schema`` and send it to the asker."""
        self.twine.validate_monitor_message(data)
        if self._handle_monitor_message is None:
            logger.debug("monitor message with nobody listening: %r", data)
            return
        self._handle_monitor_message(data)

    def set_up_periodic_monitor_message(
        self, create_monitor_message: Callable[[], Any], period: float = 60
    ) -> None:
        """Send ``create_monitor_message()`` every ``period`` seconds until the analysis ends."""
        stop = threading.Event()
        self._periodic.append(stop)

        def loop() -> None:
            while not stop.wait(period):
                try:
                    self.send_monitor_message(create_monitor_message())
                except Exception:
                    logger.exception("periodic monitor message failed")

        threading.Thread(target=loop, name="assay-monitor", daemon=True).start()

    def _close_monitors(self) -> None:
        for stop in self._periodic:
            stop.set()
        self._periodic.clear()

    def _close(self) -> None:
        self._close_monitors()
        if self._output_dir is not None:
            shutil.rmtree(self._output_dir, ignore_errors=True)
            self._output_dir = None

    def __repr__(self) -> str:
        return f"<Analysis({self.id!r}, service={self.service_id!r})>"


def as_invalid_output(error: InvalidInput) -> InvalidOutput:
    """An output the twine refuses, reported as the app's fault (same message and details)."""
    return InvalidOutput(error.message, details=dict(error.details))


class _OutputDatasets(MutableMapping[str, Dataset]):
    """``output_manifest.datasets``: assignable, as Octue's dict of datasets."""

    def __init__(self, manifest: OutputManifest) -> None:
        self._manifest = manifest

    def __getitem__(self, key: str) -> Dataset:
        return self._manifest.get_dataset(key)

    def __setitem__(self, key: str, value: Any) -> None:
        self._manifest.set_dataset(key, value)

    def __delitem__(self, key: str) -> None:
        self._manifest.remove_dataset(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._manifest.keys())

    def __len__(self) -> int:
        return len(self._manifest)


class OutputManifest(Manifest):
    """The manifest an app fills in: starts with an empty Dataset per key the twine declares;
    ``datasets[key] = ...`` takes anything a Manifest takes (a Dataset, a path, a URI)."""

    __slots__ = ("_placeholders",)

    def __init__(self, keys: list[str]) -> None:
        super().__init__(datasets={key: Dataset(name=key) for key in keys})
        self._placeholders = set(keys)

    @property
    def datasets(self) -> MutableMapping[str, Dataset]:
        return _OutputDatasets(self)

    def set_dataset(self, key: str, value: Any) -> None:
        reference = Manifest._build({key: value}, base_dir=None, allow_local_files=True)[key]
        self._references[key] = reference
        self._downloaded.pop(key, None)
        self._placeholders.discard(key)

    def remove_dataset(self, key: str) -> None:
        self.get_reference(key)  # DatasetNotInManifest for an unknown key
        del self._references[key]
        self._downloaded.pop(key, None)
        self._placeholders.discard(key)

    def filled(self) -> Manifest:
        """An immutable Manifest of the datasets the app set (untouched placeholders dropped)."""
        references = {
            key: reference
            for key, reference in self.references.items()
            if key not in self._placeholders
        }
        return Manifest(datasets=references, id=self.id)


def _values_hash(values: Any) -> str | None:
    if values is None:
        return None
    try:
        return hashing.hash_bytes(hashing.canonical_json(values).encode())
    except (TypeError, ValueError):
        return None
