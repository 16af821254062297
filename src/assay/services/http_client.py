"""The HTTP client side of the ``http`` backend: one Assay server's API with timeouts,
retries with backoff, and a resumable Server-Sent Events reader (``Last-Event-ID``).

Errors: a problem+json answer is the ``AssayError`` class of its stable ``code``; a server
that cannot be reached or does not answer in time is ``Unavailable`` (after the retries).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from assay.core.errors import AssayError, QuestionTimeout, Unavailable
from assay.services.twine import Twine

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_RETRIES = 3
STREAM_KEEPALIVE_S = 15.0  # the server's keepalive period (server/api_stream.py)
_twines: dict[tuple[str, str], Twine] = {}


def _error_classes() -> dict[str, type[AssayError]]:
    found: dict[str, type[AssayError]] = {}
    pending: list[type[AssayError]] = [AssayError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return found


def error_from_response(response: httpx.Response) -> AssayError:
    """The ``AssayError`` a problem+json answer stands for (by its stable ``code``)."""
    try:
        body = json.loads(response.read() or b"{}")
    except ValueError:
        body = {}
    code = body.get("code") if isinstance(body, dict) else None
    detail = body.get("detail") if isinstance(body, dict) else None
    cls = _error_classes().get(str(code), AssayError)
    details = body.get("details") if isinstance(body, dict) else None
    message = str(detail or f"HTTP {response.status_code} from {response.request.url}")
    return cls(message, details if isinstance(details, dict) else None)


@dataclass
class Server:
    """One Assay server, as the backend names it.

    ``timeout``: seconds to connect, and to wait for an answer (default 30). ``retries``: how
    many times an idempotent call (a GET) is tried again after a connection error, a timeout
    or a 502/503/504, with exponential backoff (0.2 s doubling, at most 5 s, jittered); a POST
    is tried again only when it could not be sent at all (no connection). An event stream
    silent for longer than ``max(timeout, 3 keepalive periods)`` is dropped and resumed.
    """

    url: str
    token: str | None
    verify: bool = True
    timeout: float = DEFAULT_TIMEOUT_S
    retries: int = DEFAULT_RETRIES

    @classmethod
    def of(cls, backend: Mapping[str, Any]) -> Server:
        return cls(
            backend["url"],
            backend.get("token"),
            bool(backend.get("verify", True)),
            float(backend.get("timeout", DEFAULT_TIMEOUT_S)),
            int(backend.get("retries", DEFAULT_RETRIES)),
        )

    def client(self, read_timeout: float | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        timeout = httpx.Timeout(self.timeout, read=read_timeout or self.timeout)
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout, verify=self.verify)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call; retried as the class docstring says; HTTP errors raised as the
        server's ``AssayError``; unreachable after the retries: ``Unavailable``."""
        idempotent = method.upper() in ("GET", "HEAD")
        attempt = 0
        while True:
            try:
                with self.client() as client:
                    response = client.request(method, path, **kwargs)
                if not (idempotent and response.status_code in _TRANSIENT_STATUS):
                    break
                failure = f"HTTP {response.status_code}"
            except httpx.TransportError as error:
                retryable = idempotent or isinstance(error, _NOT_SENT)
                failure = _describe(error, self.timeout)
                if not retryable or attempt >= self.retries:
                    raise self.unavailable(failure, attempt + 1) from None
            if attempt >= self.retries:
                break  # the last answer (a 5xx) is raised below
            attempt += 1
            logger.info("%s %s%s failed (%s); trying again", method, self.url, path, failure)
            backoff(attempt)
        if response.status_code >= 400:
            raise error_from_response(response)
        return response.json()

    def unavailable(self, failure: str, tries: int) -> Unavailable:
        return Unavailable(
            f"cannot reach the Assay server {self.url} ({tries} "
            f"{'try' if tries == 1 else 'tries'}): {failure}"
        )

    def twine(self, service_id: str) -> Twine:
        key = (self.url, service_id)
        if key not in _twines:
            found = self.call("GET", "/api/v1/services/twine", params={"id": service_id})
            _twines[key] = Twine(found["twine"])
        return _twines[key]

    def events(self, question_uuid: str, deadline: float | None) -> Iterator[tuple[str, Any]]:
        """``(event type, data)`` of the question's job, in order, until ``end``; after a
        dropped connection, a silent stream or a 502/503/504 it reconnects with
        ``Last-Event-ID`` (so every event arrives exactly once), ``retries`` times in a row
        at most (an event received resets the count)."""
        last_id: str | None = None
        failures = 0
        read_timeout = max(self.timeout, 3 * STREAM_KEEPALIVE_S)
        while True:
            headers = {"Last-Event-ID": last_id} if last_id else {}
            try:
                with (
                    self.client(read_timeout) as client,
                    client.stream(
                        "GET", f"/api/v1/jobs/{question_uuid}/stream", headers=headers
                    ) as response,
                ):
                    if response.status_code in _TRANSIENT_STATUS:
                        failure = f"HTTP {response.status_code}"
                    elif response.status_code >= 400:
                        raise error_from_response(response)
                    else:
                        for event_id, kind, data in _parse_sse(response.iter_lines(), deadline):
                            failures = 0
                            if event_id:
                                last_id = event_id
                            yield kind, data
                            if kind == "end":
                                return
                        failure = "the stream ended before its end event"
            except httpx.TransportError as error:
                failure = _describe(error, read_timeout)
            failures += 1
            if failures > max(self.retries, 1):
                raise Unavailable(
                    f"lost the event stream of question {question_uuid} from {self.url} "
                    f"({failures} tries in a row): {failure}"
                )
            logger.info(
                "event stream of question %s dropped (%s); resuming after event %s",
                question_uuid,
                failure,
                last_id,
            )
            backoff(failures)


#: Errors raised before a request was sent: even a POST may be tried again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)
_TRANSIENT_STATUS = frozenset({502, 503, 504})


def _describe(error: httpx.TransportError, timeout: float) -> str:
    if isinstance(error, httpx.TimeoutException):
        return f"no answer within {timeout:g} s ({type(error).__name__})"
    return f"{type(error).__name__}: {error}"


def backoff(attempt: int) -> None:
    """Sleep before try ``attempt + 1``: 0.2 s doubling, at most 5 s, with jitter."""
    delay = min(0.2 * 2 ** (attempt - 1), 5.0)
    time.sleep(delay * (0.5 + random.random() / 2))


def _parse_sse(
    lines: Iterator[str], deadline: float | None
) -> Iterator[tuple[str | None, str, Any]]:
    event_id: str | None = None
    kind = "message"
    data: list[str] = []
    for line in lines:
        if deadline is not None and time.monotonic() > deadline:
            raise QuestionTimeout("no end of the question's events before the timeout")
        if line == "":
            if data:
                yield event_id, kind, json.loads("\n".join(data))
            event_id, kind, data = None, "message", []
            continue
        if line.startswith(":"):
            continue  # keepalive comment
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "id":
            event_id = value
        elif field == "event":
            kind = value
        elif field == "data":
            data.append(value)
