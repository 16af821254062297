"""Twines: a service's data interface, in twined's format, validated offline and fast.

A twine (``twine.json``) has up to ten strands:

- values strands, each a JSON Schema (Draft 2020-12 unless the schema names another draft in
  ``$schema``): ``configuration_values_schema``, ``input_values_schema``,
  ``output_values_schema``, ``monitor_message_schema``;
- manifest strands ``configuration_manifest``, ``input_manifest``, ``output_manifest``, each
  ``{"datasets": {key: {"purpose", "file_tags_template", "optional"}}}`` (twined's older list form
  ``[{"key": ..., ...}]`` is read too);
- ``children``: ``[{"key", "purpose", "filters"}]`` and ``credentials``: ``[{"name", "purpose"}]``.

The twine itself is checked against ``TWINE_SCHEMA`` and every strand schema against its
metaschema when it is loaded. Validation never touches the network: references are resolved in
a registry that holds only the JSON Schema metaschemas and refuses anything else, and a strand
schema with a remote ``$ref`` is refused when the twine loads. Validators are compiled once per
twine. Every error names the strand, the JSON path and the rule broken, e.g.
``input_values.n: -1 is less than the minimum of 0``; ``details`` carries them as fields.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin

from assay.core.errors import (
    InvalidMonitorMessage,
    InvalidStrand,
    InvalidTwine,
    MissingCredential,
)

VALUES_STRANDS = ("configuration_values", "input_values", "output_values", "monitor_message")
MANIFEST_STRANDS = ("configuration_manifest", "input_manifest", "output_manifest")
ALL_STRANDS = (*VALUES_STRANDS, *MANIFEST_STRANDS, "children", "credentials")
#: Top-level keys a twine may hold besides its strands.
EXTRA_KEYS = ("twined_version", "title", "description", "$schema", "$comment")
_MAX_MESSAGE = 300
_MAX_ERRORS = 10
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")

_DATASET_SPEC = {
    "type": "object",
    "properties": {
        "purpose": {"type": "string"},
        "file_tags_template": {"type": "object"},
        "optional": {"type": "boolean"},
        "filters": {"type": "string"},
    },
    "additionalProperties": False,
}
_MANIFEST_STRAND = {
    "type": "object",
    "properties": {
        "datasets": {
            "anyOf": [
                {
                    "type": "object",
                    "propertyNames": {"pattern": "^[A-Za-z0-9][A-Za-z0-9_-]*$"},
                    "additionalProperties": _DATASET_SPEC,
                },
                {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "key": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]*$"},
                            **_DATASET_SPEC["properties"],  # type: ignore[dict-item]
                        },
                        "required": ["key"],
                        "additionalProperties": False,
                    },
                },
            ]
        },
        "purpose": {"type": "string"},
    },
    "required": ["datasets"],
    "additionalProperties": False,
}
#: The schema a twine itself must meet (Draft 2020-12).
TWINE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        **{f"{strand}_schema": {"type": "object"} for strand in VALUES_STRANDS},
        **{strand: _MANIFEST_STRAND for strand in MANIFEST_STRANDS},
        "children": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "key": {"type": "string", "minLength": 1},
                    "purpose": {"type": "string"},
                    "filters": {"type": "string"},
                },
                "required": ["key"],
                "additionalProperties": False,
            },
        },
        "credentials": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "pattern": "^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$"},
                    "purpose": {"type": "string"},
                },
                "required": ["name"],
                "additionalProperties": False,
            },
        },
        **{key: {} for key in EXTRA_KEYS},
    },
    "additionalProperties": False,
}


# -- offline JSON Schema machinery -----------------------------------------------------------
_jsonschema: Any = None


def _lib() -> Any:
    """jsonschema, imported on first use (worker processes without schemas never pay for it)."""
    global _jsonschema
    if _jsonschema is None:
        import jsonschema
        import jsonschema_specifications
        from referencing import Registry

        def refuse(uri: str) -> Any:
            raise LookupError(f"remote $ref {uri!r} refused: validation runs offline")

        offline: Any = Registry(retrieve=refuse)  # type: ignore[call-arg]
        jsonschema.assay_offline_registry = offline.combine(jsonschema_specifications.REGISTRY)
        _jsonschema = jsonschema
    return _jsonschema


def _metaschema_uris() -> set[str]:
    import jsonschema_specifications

    return {urldefrag(uri)[0].rstrip("#") for uri in jsonschema_specifications.REGISTRY}


def compile_schema(schema: Mapping[str, Any], where: str) -> Any:
    """A validator for ``schema`` (its own draft, Draft 2020-12 by default), checked first."""
    jsonschema = _lib()
    _refuse_remote_refs(schema, where)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as error:
        path = _json_path(where, error.absolute_path)
        raise InvalidTwine(
            f"{path}: not a valid JSON Schema: {_short(error.message)} (rule: {error.validator})",
            details={"strand": where, "path": path, "rule": error.validator},
        ) from None
    return cls(schema, registry=jsonschema.assay_offline_registry)


def _refuse_remote_refs(schema: Any, where: str) -> None:
    """Refuse a ``$ref`` to anything outside ``schema`` (its ``$id``s) and the metaschemas."""
    ids: set[str] = set()
    refs: list[tuple[str, str]] = []

    def walk(node: Any, base: str, path: str) -> None:
        if isinstance(node, Mapping):
            node_id = node.get("$id")
            if isinstance(node_id, str):
                base = urljoin(base, node_id)
                ids.add(urldefrag(base)[0])
            for key, value in node.items():
                if key in ("$ref", "$dynamicRef") and isinstance(value, str):
                    refs.append((urljoin(base, value), f"{path}/{key}"))
                elif key not in ("const", "enum", "default", "examples"):
                    walk(value, base, f"{path}/{key}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, base, f"{path}/{index}")

    walk(schema, "", "")
    known: set[str] | None = None
    for target, path in refs:
        document = urldefrag(target)[0]
        if not document or document in ids:
            continue
        known = known if known is not None else _metaschema_uris()
        if document.rstrip("#") in known:
            continue
        raise InvalidTwine(
            f"{where}: $ref {target!r} at {path or '/'} points outside the twine; validation runs "
            "offline, so put the referenced schema under $defs and refer to it as '#/$defs/...'",
            details={"strand": where, "path": path, "rule": "$ref"},
        )


def _short(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _json_path(strand: str, path: Iterable[Any]) -> str:
    text = strand
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif isinstance(part, str) and _IDENTIFIER.match(part):
            text += f".{part}"
        else:
            text += f"[{json.dumps(part)}]"
    return text


def _strand_error(strand: str, validator: Any, instance: Any, cls: type[InvalidStrand]) -> None:
    """Raise ``cls`` naming the best error (path and rule); details list the first few."""
    jsonschema = _lib()
    errors = []
    for error in validator.iter_errors(instance):
        errors.append(error)
        if len(errors) >= _MAX_ERRORS:
            break
    if not errors:
        return
    best = jsonschema.exceptions.best_match(errors)
    path = _json_path(strand, best.absolute_path)
    raise cls(
        f"{path}: {_short(best.message)}",
        details={
            "strand": strand,
            "path": path,
            "rule": best.validator,
            "errors": [
                {
                    "path": _json_path(strand, error.absolute_path),
                    "rule": error.validator,
                    "message": _short(error.message),
                }
                for error in errors
            ],
        },
    )


def _plain(value: Any) -> Any:
    """Mappings as dicts (jsonschema's "object" is ``dict``), recursively; tuples as lists."""
    if isinstance(value, Mapping) and not isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, dict):
        if any(isinstance(item, Mapping | tuple) for item in value.values()):
            return {key: _plain(item) for key, item in value.items()}
        return value
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value


# -- the twine --------------------------------------------------------------------------------
class Twine:
    """A loaded, checked twine. ``Twine(source)`` takes a path, JSON text, a dict or a Twine."""

    def __init__(self, source: Any = None) -> None:
        if isinstance(source, Twine):
            self._copy_from(source)
            return
        raw, where = _load(source)
        self.source = where
        self.raw: dict[str, Any] = raw
        self._check_shape(raw)
        self._validators: dict[str, Any] = {}
        for strand in VALUES_STRANDS:
            schema = raw.get(f"{strand}_schema")
            if schema is not None:
                self._validators[strand] = compile_schema(schema, f"{strand}_schema")
        self.manifests: dict[str, dict[str, dict[str, Any]]] = {}
        self._tag_validators: dict[tuple[str, str], Any] = {}
        for strand in MANIFEST_STRANDS:
            if strand in raw:
                self.manifests[strand] = self._manifest_strand(strand, raw[strand]["datasets"])
        self.children: list[dict[str, Any]] = list(raw.get("children") or [])
        keys = [child["key"] for child in self.children]
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        if repeated:
            raise InvalidTwine(f"children: key {repeated[0]!r} is declared twice")
        self.credentials: list[dict[str, Any]] = list(raw.get("credentials") or [])

    def _copy_from(self, other: Twine) -> None:
        self.source = other.source
        self.raw = other.raw
        self._validators = other._validators
        self.manifests = other.manifests
        self._tag_validators = other._tag_validators
        self.children = other.children
        self.credentials = other.credentials

    def _check_shape(self, raw: Any) -> None:
        jsonschema = _lib() if raw else None
        if not isinstance(raw, dict):
            raise InvalidTwine(f"twine: expected a JSON object, got {type(raw).__name__}")
        unknown = sorted(set(raw) - set(TWINE_SCHEMA["properties"]))
        if unknown:
            strands = ", ".join(f"{s}_schema" if s in VALUES_STRANDS else s for s in ALL_STRANDS)
            raise InvalidTwine(
                f"twine: unknown strand {unknown[0]!r} (strands: {strands})",
                details={
                    "strand": "twine",
                    "path": f"twine.{unknown[0]}",
                    "rule": "additionalProperties",
                },
            )
        if jsonschema is None:
            return
        validator = _twine_validator()
        errors = list(validator.iter_errors(raw))
        if errors:
            best = jsonschema.exceptions.best_match(errors)
            path = _json_path("twine", best.absolute_path)
            raise InvalidTwine(
                f"{path}: {_short(best.message)} (rule: {best.validator})",
                details={"strand": "twine", "path": path, "rule": best.validator},
            )

    def _manifest_strand(self, strand: str, datasets: Any) -> dict[str, dict[str, Any]]:
        if isinstance(datasets, list):
            entries: dict[str, dict[str, Any]] = {}
            for entry in datasets:
                key = entry["key"]
                if key in entries:
                    raise InvalidTwine(f"{strand}.datasets: key {key!r} is declared twice")
                entries[key] = {k: v for k, v in entry.items() if k != "key"}
        else:
            entries = {key: dict(value) for key, value in datasets.items()}
        for key, spec in entries.items():
            template = spec.get("file_tags_template")
            if template is not None:
                self._tag_validators[(strand, key)] = compile_schema(
                    template, f"{strand}.datasets.{key}.file_tags_template"
                )
        return entries

    # -- what the twine has -------------------------------------------------------------------
    @property
    def available_strands(self) -> set[str]:
        strands = {strand for strand in VALUES_STRANDS if strand in self._validators}
        strands |= set(self.manifests)
        if "children" in self.raw:
            strands.add("children")
        if "credentials" in self.raw:
            strands.add("credentials")
        return strands

    def has_schema(self, strand: str) -> bool:
        return strand in self._validators

    # -- values -------------------------------------------------------------------------------
    def validate_values(self, strand: str, values: Any) -> Any:
        """Check ``values`` against the strand's schema; returns them. No schema: no check."""
        if strand not in VALUES_STRANDS:
            raise ValueError(f"not a values strand: {strand!r}")
        validator = self._validators.get(strand)
        if validator is None:
            return values
        if values is None and not validator.is_valid(None):
            error = InvalidMonitorMessage if strand == "monitor_message" else InvalidStrand
            raise error(
                f"{strand}: missing: the twine has a {strand}_schema, so {strand} must be given",
                details={"strand": strand, "path": strand, "rule": "required"},
            )
        plain = _plain(values)
        if not validator.is_valid(plain):
            error_cls = InvalidMonitorMessage if strand == "monitor_message" else InvalidStrand
            _strand_error(strand, validator, plain, error_cls)
        return values

    def validate_configuration_values(self, values: Any) -> Any:
        return self.validate_values("configuration_values", values)

    def validate_input_values(self, values: Any) -> Any:
        return self.validate_values("input_values", values)

    def validate_output_values(self, values: Any) -> Any:
        return self.validate_values("output_values", values)

    def validate_monitor_message(self, message: Any) -> Any:
        return self.validate_values("monitor_message", message)

    # -- manifests ----------------------------------------------------------------------------
    def validate_manifest(self, strand: str, manifest: Any, check_files: bool = True) -> None:
        """Required datasets present; with ``check_files`` every file's tags meet its dataset's
        ``file_tags_template`` (reading each dataset: a catalog or remote one is downloaded)."""
        if strand not in MANIFEST_STRANDS:
            raise ValueError(f"not a manifest strand: {strand!r}")
        spec = self.manifests.get(strand)
        if spec is None:
            return
        present = set(manifest.keys()) if manifest is not None else set()
        missing = [
            key for key, entry in spec.items() if not entry.get("optional") and key not in present
        ]
        if missing:
            key = missing[0]
            purpose = spec[key].get("purpose")
            about = f" ({purpose})" if purpose else ""
            path = f"{strand}.datasets.{key}"
            what = "no manifest was given" if manifest is None else "the manifest lacks it"
            raise InvalidStrand(
                f"{path}: the required dataset {key!r}{about} is missing ({what})",
                details={"strand": strand, "path": path, "rule": "required", "missing": missing},
            )
        if check_files and manifest is not None:
            for key in spec:
                validator = self._tag_validators.get((strand, key))
                if validator is not None and key in present:
                    self.validate_file_tags(strand, key, manifest.get_dataset(key), validator)

    def validate_file_tags(
        self, strand: str, key: str, dataset: Any, validator: Any = None
    ) -> None:
        """Check every file of ``dataset`` against the template of dataset ``key``."""
        validator = validator or self._tag_validators.get((strand, key))
        if validator is None:
            return
        is_valid = validator.is_valid
        for datafile in dataset.files:
            tags = datafile.tags
            plain = _plain(tags)
            if not is_valid(plain):
                where = (
                    f"{strand}.datasets.{key}.files[{datafile.relative_path or datafile.name}].tags"
                )
                try:
                    _strand_error(where, validator, plain, InvalidStrand)
                except InvalidStrand as error:
                    error.details["strand"] = strand
                    error.details["file"] = datafile.path
                    error.message += (
                        f" (file {datafile.path}: its tags must meet the dataset's "
                        "file_tags_template)"
                    )
                    raise

    # -- children and credentials --------------------------------------------------------------
    def validate_children(self, children: Iterable[Any]) -> None:
        """Every child key the twine declares is given, and no key it does not declare."""
        given = [child["key"] if isinstance(child, Mapping) else child.key for child in children]
        declared = [child["key"] for child in self.children]
        for key in given:
            if key not in declared:
                allowed = ", ".join(repr(k) for k in declared) or "none"
                raise InvalidStrand(
                    f"children.{key}: the twine declares no child {key!r} (it declares: {allowed})",
                    details={"strand": "children", "path": f"children.{key}", "rule": "declared"},
                )
        for key in declared:
            if key not in given:
                raise InvalidStrand(
                    f"children.{key}: the twine needs a child {key!r}; add it to the service's "
                    "children (key, id, backend)",
                    details={"strand": "children", "path": f"children.{key}", "rule": "required"},
                )

    def validate_credentials(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        for credential in self.credentials:
            name = credential["name"]
            if not environ.get(name):
                purpose = credential.get("purpose")
                about = f" ({purpose})" if purpose else ""
                raise MissingCredential(
                    f"credentials.{name}: the credential {name}{about} is not set in the "
                    "environment; set it before running the service",
                    details={
                        "strand": "credentials",
                        "path": f"credentials.{name}",
                        "rule": "required",
                    },
                )

    def __repr__(self) -> str:
        return f"<Twine({self.source or 'inline'}, strands={sorted(self.available_strands)})>"


_twine_validator_cache: list[Any] = []


def _twine_validator() -> Any:
    if not _twine_validator_cache:
        jsonschema = _lib()
        _twine_validator_cache.append(
            jsonschema.Draft202012Validator(
                TWINE_SCHEMA, registry=jsonschema.assay_offline_registry
            )
        )
    return _twine_validator_cache[0]


_loaded: dict[Path, tuple[tuple[int, int], Twine]] = {}
_loaded_lock = threading.Lock()


def load_twine(path: Path) -> Twine:
    """The twine file at ``path``, loaded once while the file is unchanged (its mtime and size):
    an asker loads a service's twine once, and a fork server's children inherit the twines it
    loaded (``answer.warm_for``)."""
    try:
        stat = path.stat()
    except OSError:
        return Twine(path)  # raises InvalidTwine naming the missing file
    version = (stat.st_mtime_ns, stat.st_size)
    with _loaded_lock:
        cached = _loaded.get(path)
        if cached is not None and cached[0] == version:
            return cached[1]
    twine = Twine(path)
    with _loaded_lock:
        _loaded[path] = (version, twine)
    return twine


def _load(source: Any) -> tuple[dict[str, Any], str | None]:
    if source is None:
        return {}, None
    if isinstance(source, Mapping):
        return json.loads(json.dumps(source)), None
    if isinstance(source, os.PathLike) or (
        isinstance(source, str) and not source.lstrip().startswith(("{", "["))
    ):
        path = Path(os.fspath(source))
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InvalidTwine(f"twine: no twine file at {path.absolute()}") from None
        except (OSError, UnicodeDecodeError) as error:
            raise InvalidTwine(f"twine: cannot read {path}: {error}") from None
        where: str | None = str(path.absolute())
    elif isinstance(source, str):
        text, where = source, None
    else:
        raise InvalidTwine(
            f"twine: expected a path, JSON text, a dict or a Twine, got {type(source).__name__}"
        )
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        label = where or "twine"
        raise InvalidTwine(f"{label}: not valid JSON: {error}") from None
    if not isinstance(raw, dict):
        raise InvalidTwine(f"{where or 'twine'}: expected a JSON object, got {type(raw).__name__}")
    return raw, where
