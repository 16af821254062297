"""Errors as RFC 9457 problem documents (``application/problem+json``).

Every failure answers with one JSON shape: ``type``, ``title``, ``status``, ``detail``,
``instance`` and ``code`` (the stable code of ``assay.core.errors``), plus the error's own
machine-readable ``details`` fields (e.g. ``field`` for bad input). The HTTP status follows
the error's family, in one table here.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from assay.core import errors

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://assay.dev/problems/"
_log = logging.getLogger("assay.server")

#: First match wins: subclasses before their bases.
_STATUS: tuple[tuple[type[errors.AssayError], int], ...] = (
    (errors.Unauthorized, 401),
    (errors.Forbidden, 403),
    (errors.PayloadTooLarge, 413),
    (errors.NotFound, 404),
    (errors.NotLocalized, 409),
    (errors.Conflict, 409),
    (errors.InvalidInput, 422),
    (errors.IntegrityError, 500),
    (errors.Unavailable, 503),
    (errors.NotBuiltYet, 501),
    (errors.MissingExtra, 501),
)


def status_of(error: errors.AssayError) -> int:
    for family, status in _STATUS:
        if isinstance(error, family):
            return status
    return 500


def problem(
    status: int,
    code: str,
    detail: str,
    instance: str,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": instance,
        "code": code,
    }
    for key, value in (extra or {}).items():
        body.setdefault(key, value)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem document."""

    @app.exception_handler(errors.AssayError)
    async def _assay_error(request: Request, exc: errors.AssayError) -> JSONResponse:
        status = status_of(exc)
        headers = {"WWW-Authenticate": 'Bearer realm="assay"'} if status == 401 else None
        return problem(status, exc.code, exc.message, request.url.path, exc.details, headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            location = [str(part) for part in err.get("loc", ())]
            # ("query", "limit") -> "limit"; ("body", "tags", "k") -> "tags.k"; ("body",) -> "body"
            field = ".".join(location[1:]) or (location[0] if location else "")
            where = location[0] if location else ""
            problems.append({"field": field, "location": where, "message": str(err.get("msg", ""))})
        first = problems[0] if problems else {"field": "", "message": "invalid request"}
        detail = f"invalid {first['field']}: {first['message']}"
        return problem(
            422,
            "invalid_input",
            detail,
            request.url.path,
            {"field": first["field"], "errors": problems},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status_code, f"http_{exc.status_code}"
        )
        return problem(
            exc.status_code, code, str(exc.detail), request.url.path, None, dict(exc.headers or {})
        )

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        _log.exception("internal error on %s %s", request.method, request.url.path)
        return problem(
            500,
            "internal_error",
            f"internal error ({type(exc).__name__}); see the server log",
            request.url.path,
        )
