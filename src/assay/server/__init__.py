"""Assay's HTTP server (FastAPI): ``create_app(settings=None)``, served by ``assay serve``.

The server is a face: each handler parses the request, calls one domain function and shapes
the answer. Errors are RFC 9457 problem documents (``application/problem+json``) whose
``code`` is the ``AssayError`` code (see ``problems``). One router module per area lives in
``routers/``.
"""

from assay.server.app import create_app

__all__ = ["create_app"]
