"""The HTTP face of Assay: the REST API under ``/api/v1`` (and later the web UI)."""
