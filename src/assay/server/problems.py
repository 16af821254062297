"""RFC 9457 problem documents for every error, mapped from ``AssayError`` codes in one place.

A problem body: ``{"type": "urn:assay:problem:<code>", "title": ..., "status": ...,
"detail": <the error message>, "code": <the AssayError code>, "instance": <request path>}``
plus the error's ``details`` under ``"details"`` when it has any.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from assay.core.errors import (
    AssayError,
    AuthenticationRequired,
    Conflict,
    IntegrityError,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    Unavailable,
)

PROBLEM_TYPE = "application/problem+json"

#: (class, HTTP status), most specific first: the first match wins.
STATUS_BY_CLASS: tuple[tuple[type[AssayError], int], ...] = (
    (AuthenticationRequired, 401),
    (PermissionDenied, 403),
    (PayloadTooLarge, 413),
    (InvalidInput, 400),
    (NotFound, 404),
    (Conflict, 409),
    (IntegrityError, 500),
    (Unavailable, 503),
)
#: Codes whose class sits elsewhere in the hierarchy but whose meaning is a conflict.
STATUS_BY_CODE = {"invalid_transition": 409}

TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    413: "Payload too large",
    500: "Internal server error",
    503: "Service unavailable",
}


def status_for(error: AssayError) -> int:
    if error.code in STATUS_BY_CODE:
        return STATUS_BY_CODE[error.code]
    for cls, status in STATUS_BY_CLASS:
        if isinstance(error, cls):
            return status
    return 500


def problem(
    status: int, code: str, detail: str, instance: str, details: dict[str, Any] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:assay:problem:{code}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
        "instance": instance,
    }
    if details:
        body["details"] = details
    headers = {"WWW-Authenticate": 'Bearer realm="assay"'} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_TYPE, headers=headers)


async def _assay_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AssayError)
    return problem(status_for(exc), exc.code, exc.message, request.url.path, exc.details)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
        for e in exc.errors()
    ]
    return problem(400, "invalid_input", "the request is malformed", request.url.path,
                   {"errors": errors})  # fmt: skip


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return problem(exc.status_code, code, str(exc.detail), request.url.path)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    # The message names the type only: internals (paths, SQL) stay in the server log.
    return problem(500, "internal_error", f"internal error ({type(exc).__name__})",
                   request.url.path)  # fmt: skip


def install(app: FastAPI) -> None:
    """Route every error of ``app`` through a problem document."""
    app.add_exception_handler(AssayError, _assay_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _internal_error)
