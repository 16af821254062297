"""Which addresses may be served without auth: loopback only."""

from __future__ import annotations

import ipaddress

from assay.core.errors import InvalidInput


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, auth: bool) -> None:
    """Refuse to serve without auth on anything but a loopback address.

    Even on loopback, auth stays on by default (as Jupyter's does): other local users and
    web pages in a browser can reach loopback too.
    """
    if not auth and not is_loopback(host):
        raise InvalidInput(
            f"--insecure-no-auth is refused for {host}: without auth anyone who can reach the "
            "address can read and write everything; bind 127.0.0.1 or keep auth on",
            {"field": "host"},
        )
