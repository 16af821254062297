"""Webhook tokens: HMAC-SHA256 of a job UUID (or of "admin") with the server secret.

The secret is ``$ASSAY_SERVER_SECRET`` when set, else the file ``$ASSAY_HOME/server_secret``
(32 random bytes, hex, mode 0600), generated on first use with an exclusive create so two
processes racing to make it agree on one. It never lives in code. A job's token depends only
on its UUID and the secret: stable across updates and server restarts, and changed for every
job at once by changing the secret. Tokens are compared in constant time.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from assay.core.errors import AuthenticationRequired, InvalidInput, PermissionDenied
from assay.core.settings import Settings

SECRET_FILE = "server_secret"
_MIN_SECRET_LENGTH = 16


def secret_path(settings: Settings) -> Path:
    return settings.home / SECRET_FILE


def server_secret(settings: Settings) -> bytes:
    """The server secret (see the module docstring); created on first use."""
    configured = os.environ.get("ASSAY_SERVER_SECRET")
    if configured:
        if len(configured) < _MIN_SECRET_LENGTH:
            raise InvalidInput(
                f"ASSAY_SERVER_SECRET is too short: use at least {_MIN_SECRET_LENGTH} characters"
            )
        return configured.encode()
    path = secret_path(settings)
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass  # first use: create it below
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_hex(32).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        # Fails when another process made the secret first: theirs is read below.
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
    finally:
        temp.unlink()
    return _read_secret(path)


#: Secrets read from files, by path: the file is read once per process (every webhook call
#: checks a token). A changed secret takes effect when the server restarts.
_cache: dict[str, bytes] = {}


def _read_secret(path: Path) -> bytes:
    cached = _cache.get(str(path))
    if cached is not None:
        return cached
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise InvalidInput(
            f"the server secret {path} is readable by others (mode {mode:o}); "
            f"run 'chmod 600 {path}'"
        )
    value = path.read_bytes().strip()
    if len(value) < _MIN_SECRET_LENGTH:
        raise InvalidInput(f"the server secret {path} is too short; delete it to make a new one")
    _cache[str(path)] = value
    return value


def _mac(secret: bytes, message: str) -> str:
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()


def job_token(job_id: str, settings: Settings) -> str:
    """The webhook token of job ``job_id``."""
    return _mac(server_secret(settings), f"pipelinejob:{job_id.lower()}")


def admin_token(settings: Settings) -> str:
    """The admin token (reset, ready, delete): HMAC of "admin" with the server secret."""
    return _mac(server_secret(settings), "admin")


def token_role(job_id: str, token: str | None, settings: Settings) -> str:
    """ "admin" or "job" for a token valid on ``job_id``; raises ``AuthenticationRequired`` (no
    token) or ``PermissionDenied`` (wrong or forged). Comparisons are constant-time."""
    if not token:
        raise AuthenticationRequired("this request needs a token (?token=... from the webhook URL)")
    given = token.encode()
    if hmac.compare_digest(given, admin_token(settings).encode()):
        return "admin"
    if hmac.compare_digest(given, job_token(job_id.lower(), settings).encode()):
        return "job"
    raise PermissionDenied("the token is not valid for this job")


def check_token(job_id: str, token: str | None, settings: Settings, *, admin: bool) -> str:
    """Verify ``token`` for an event on ``job_id``; ``admin`` events need the admin token.
    Returns the token's role."""
    role = token_role(job_id, token, settings)
    if admin and role != "admin":
        raise PermissionDenied("this event needs the admin token")
    return role
