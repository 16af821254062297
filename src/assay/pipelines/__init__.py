"""Pipelines: tasks whose outputs are bundles, planned and cached by content (see
docs/pipelines.md). The public, Disdat-shaped face is ``assay.pipe`` and ``assay.api.apply``."""
