"""RFC 9457 problem documents for every error, mapped from ``AssayError`` codes in one place.

A problem body: ``{"type": "urn:assay:problem:<code>", "title": ..., "status": ...,
"detail": <the error message>, "code": <the AssayError code>, "instance": <request path>}``
plus the error's ``details`` under ``"details"`` when it has any; under ``/api/`` the same
fields are also RFC 9457 extension members at the top level (``field`` for bad input).

Bad input is 400 on the webhook routes and 422 under ``/api/`` (the REST API's contract:
malformed JSON or parameters answer 422 naming the field).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from assay.core.errors import (
    AccessDenied,
    AssayError,
    AuthenticationRequired,
    Conflict,
    IntegrityError,
    InvalidInput,
    MissingExtra,
    NotBuiltYet,
    NotFound,
    PayloadTooLarge,
    Unavailable,
)

PROBLEM_TYPE = "application/problem+json"

#: (class, HTTP status), most specific first: the first match wins.
STATUS_BY_CLASS: tuple[tuple[type[AssayError], int], ...] = (
    (AuthenticationRequired, 401),
    (AccessDenied, 403),  # a policy, a job's owner or a token's scope says no
    (PayloadTooLarge, 413),
    (InvalidInput, 400),
    (NotFound, 404),
    (Conflict, 409),
    (IntegrityError, 500),
    (Unavailable, 503),
    (NotBuiltYet, 501),
    (MissingExtra, 501),
)
API_PREFIX = "/api/"
_log = logging.getLogger("assay.server")
#: Codes whose class sits elsewhere in the hierarchy but whose meaning is a conflict.
STATUS_BY_CODE = {"invalid_transition": 409}

TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    413: "Payload too large",
    416: "Range not satisfiable",
    422: "Unprocessable content",
    501: "Not implemented",
    500: "Internal server error",
    503: "Service unavailable",
}


def status_for(error: AssayError, path: str = "") -> int:
    if error.code in STATUS_BY_CODE:
        return STATUS_BY_CODE[error.code]
    for cls, status in STATUS_BY_CLASS:
        if isinstance(error, cls):
            return 422 if status == 400 and path.startswith(API_PREFIX) else status
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
        if instance.startswith(API_PREFIX):
            for key, value in details.items():
                body.setdefault(key, value)
    headers = {"WWW-Authenticate": 'Bearer realm="assay"'} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_TYPE, headers=headers)


async def _assay_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AssayError)
    path = request.url.path
    return problem(status_for(exc, path), exc.code, exc.message, path, exc.details)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
        for e in exc.errors()
    ]
    path = request.url.path
    if not path.startswith(API_PREFIX):
        return problem(400, "invalid_input", "the request is malformed", path,
                       {"errors": errors})  # fmt: skip
    # ("query", "limit") -> "limit"; ("body", "tags", "k") -> "tags.k"; ("body",) -> "body"
    first = errors[0]["loc"] if errors else []
    field = ".".join(first[1:]) or (first[0] if first else "")
    message = errors[0]["msg"] if errors else "malformed request"
    return problem(422, "invalid_input", f"invalid {field}: {message}", path,
                   {"field": field, "errors": errors})  # fmt: skip


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed", 416: "range_not_satisfiable"}.get(
        exc.status_code, "http_error"
    )
    response = problem(exc.status_code, code, str(exc.detail), request.url.path)
    response.headers.update(dict(exc.headers or {}))
    return response


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    # The message names the type only: internals (paths, SQL) stay in the server log.
    _log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "internal_error", f"internal error ({type(exc).__name__})",
                   request.url.path)  # fmt: skip


def install(app: FastAPI) -> None:
    """Route every error of ``app`` through a problem document."""
    app.add_exception_handler(AssayError, _assay_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _internal_error)
