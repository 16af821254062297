"""Who is calling: bearer tokens checked against the catalog, per route scope.

Auth is on by default. A route declares the scope it needs with ``Depends(scope("write"))``
and receives the ``Principal``. With auth turned off (``--insecure-no-auth``, loopback only)
every caller is the local user with every scope.

A token the catalog accepted is remembered for ``ASSAY_SERVER_TOKEN_CACHE_SECONDS`` (default
2; 0 turns the cache off), keyed by the SHA-256 of the whole token (the token itself is not
kept), so a busy client costs one catalog read per token per period, not one per request.
The trade-off: a token revoked meanwhile keeps working for up to that long in each server
process. Expiry and scope are checked on every request, cached or not.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from assay.auth import tokens
from assay.core.errors import InvalidInput, TokenInvalid

CACHE_ENV = "ASSAY_SERVER_TOKEN_CACHE_SECONDS"
DEFAULT_CACHE_SECONDS = 2.0
_CACHE_SIZE = 1024


@dataclass(frozen=True)
class Principal:
    owner: str
    scopes: tuple[str, ...]
    token_id: str | None  # None when auth is off


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise TokenInvalid("malformed Authorization header: use 'Bearer <token>'")
    return value.strip()


def scope(needed: str) -> Callable[[Request], object]:
    """A dependency that authenticates the request and requires ``needed``."""
    tokens.check_scope(needed)

    async def dependency(request: Request) -> Principal:
        state = request.app.state
        if not state.auth:
            return Principal(state.local_user, tuple(tokens.SCOPES), None)
        token = bearer(request)
        cache: TokenCache = state.token_cache
        record = cache.get(token, needed)
        if record is None:
            record = await run_in_threadpool(
                tokens.authenticate, token, needed, workspace=state.workspace
            )
            cache.put(token, record)
        return Principal(record.owner, record.scopes, record.token_id)

    return dependency


class TokenCache:
    """Tokens the catalog accepted, for ``seconds`` each (see the module docstring)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, tuple[float, tokens.TokenRecord]] = OrderedDict()

    @classmethod
    def from_env(cls) -> TokenCache:
        raw = os.environ.get(CACHE_ENV, "")
        try:
            seconds = float(raw) if raw else DEFAULT_CACHE_SECONDS
        except ValueError:
            seconds = -1.0
        if not 0 <= seconds <= 300:
            raise InvalidInput(f"{CACHE_ENV}={raw!r} must be a number of seconds from 0 to 300")
        return cls(seconds)

    def get(self, token: str | None, needed: str) -> tokens.TokenRecord | None:
        """The remembered record when still fresh, unexpired and allowing ``needed``; else
        None (the caller asks the catalog, which also gives the precise error)."""
        if not token or self.seconds <= 0:
            return None
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            found = self._seen.get(key)
        if found is None or now - found[0] > self.seconds:
            return None
        record = found[1]
        if record.expires is not None and record.expires <= time.time():
            return None
        return record if record.allows(needed) else None

    def put(self, token: str | None, record: tokens.TokenRecord) -> None:
        if not token or self.seconds <= 0:
            return
        key = hashlib.sha256(token.encode()).hexdigest()
        with self._lock:
            self._seen[key] = (time.monotonic(), record)
            self._seen.move_to_end(key)
            while len(self._seen) > _CACHE_SIZE:
                self._seen.popitem(last=False)
