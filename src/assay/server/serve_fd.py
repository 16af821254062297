"""``python -m assay.server.serve_fd``: the whole app under uvicorn, like ``assay serve``, plus
``--fd``: an already listening socket, so a caller (the tests, the benchmark) knows the port
before the server starts and need not poll for readiness.
"""

from __future__ import annotations

import argparse
import socket
import sys
from collections.abc import Sequence

from assay.auth.network import check_bind
from assay.core.errors import AssayError, InvalidInput
from assay.server.api_app import DEFAULT_MAX_UPLOAD_BYTES


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m assay.server.serve_fd")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--fd", type=int, default=None, help="serve on this listening socket")
    parser.add_argument("--insecure-no-auth", action="store_true")
    parser.add_argument("--max-upload-bytes", type=int, default=DEFAULT_MAX_UPLOAD_BYTES)
    parser.add_argument("--push-uploads", action="store_true")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--forwarded-allow-ips", default=None)
    args = parser.parse_args(argv)
    host = args.host
    # socket(fileno=...) reads the socket's real family (uvicorn's own --fd assumes AF_UNIX,
    # which leaves TCP_NODELAY off: every keep-alive response then waits ~40 ms for the
    # peer's delayed ACK).
    listener = socket.socket(fileno=args.fd) if args.fd is not None else None
    if listener is not None:
        host = listener.getsockname()[0]
    try:
        check_bind(host, auth=not args.insecure_no_auth)
        if args.workers > 1:
            return _serve_workers(args, listener)
        from assay.server.app import create_app

        app = create_app(
            auth=not args.insecure_no_auth,
            max_upload_bytes=args.max_upload_bytes,
            push_uploads=args.push_uploads,
        )
    except AssayError as err:
        sys.stderr.write(f"error: {err.message}\n")
        return err.exit_code
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        forwarded_allow_ips=args.forwarded_allow_ips,
    )
    uvicorn.Server(config).run(sockets=[listener] if listener is not None else None)
    return 0


def _serve_workers(args: argparse.Namespace, listener: socket.socket | None) -> int:
    """``--workers N``: uvicorn's supervisor starts N processes, each making the app from the
    import string (its options travel in the environment, as ``assay serve`` passes them)."""
    import os

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from assay.server.app import MAX_UPLOAD_ENV, PUSH_UPLOADS_ENV

    if args.insecure_no_auth:
        raise InvalidInput("--insecure-no-auth runs one worker: drop --workers")
    os.environ[PUSH_UPLOADS_ENV] = "1" if args.push_uploads else "0"
    os.environ[MAX_UPLOAD_ENV] = str(args.max_upload_bytes)
    config = uvicorn.Config(
        "assay.server.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning",
        access_log=False,
        forwarded_allow_ips=args.forwarded_allow_ips,
    )
    sock = listener if listener is not None else config.bind_socket()
    Multiprocess(config, sockets=[sock]).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
