"""A tiny TCP proxy on loopback for tests of what a client does when the network fails: it
forwards bytes both ways to an upstream server, and on request drops every open connection,
refuses the next connections (accepts and closes them), or answers them ``503`` itself. It
records the head of each request it forwards, so a test can see what the client sent.

Threads, not asyncio: each connection is two pump threads; ``drop`` shuts the sockets down.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

_SERVICE_UNAVAILABLE = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
)


@dataclass
class TcpProxy:
    upstream: tuple[str, int]
    listener: socket.socket = field(init=False)
    requests: list[bytes] = field(default_factory=list)  # the first bytes of each connection
    refused: int = 0
    answered_503: int = 0
    _refuse: int = 0
    _answer_503: int = 0
    _after_refusals: Callable[[], None] | None = None
    _open: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closed: bool = False

    def __post_init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        threading.Thread(target=self._accept_loop, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def drop(self) -> None:
        """Cut every open connection (both sides), as a proxy or a network that dies does."""
        with self._lock:
            sockets, self._open = self._open, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def refuse(self, count: int, then: Callable[[], None] | None = None) -> None:
        """Accept and at once close the next ``count`` connections; then call ``then``."""
        with self._lock:
            self._refuse = count
            self._after_refusals = then

    def answer_503(self, count: int) -> None:
        """Answer the next ``count`` connections ``503`` without asking the upstream."""
        with self._lock:
            self._answer_503 = count

    def close(self) -> None:
        self._closed = True
        self.listener.close()
        self.drop()

    # -- inside ---------------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        then = None
        with self._lock:
            if self._refuse > 0:
                self._refuse -= 1
                self.refused += 1
                if self._refuse == 0:
                    then, self._after_refusals = self._after_refusals, None
                action = "refuse"
            elif self._answer_503 > 0:
                self._answer_503 -= 1
                self.answered_503 += 1
                action = "503"
            else:
                action = "forward"
        if action == "refuse":
            client.close()
            if then is not None:
                then()
            return
        if action == "503":
            with contextlib.suppress(OSError):
                client.recv(65536)
                client.sendall(_SERVICE_UNAVAILABLE)
            client.close()
            return
        upstream = socket.create_connection(self.upstream)
        with self._lock:
            self._open.extend([client, upstream])
        first = [True]

        def pump(source: socket.socket, sink: socket.socket, record: bool) -> None:
            with contextlib.suppress(OSError):
                while True:
                    data = source.recv(65536)
                    if not data:
                        break
                    if record and first[0]:
                        first[0] = False
                        with self._lock:
                            self.requests.append(data)
                    sink.sendall(data)
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

        threading.Thread(target=pump, args=(upstream, client, False), daemon=True).start()
        pump(client, upstream, True)


@contextlib.contextmanager
def proxy_to(url: str) -> Iterator[TcpProxy]:
    host, _, port = url.removeprefix("http://").partition(":")
    proxy = TcpProxy((host, int(port)))
    try:
        yield proxy
    finally:
        proxy.close()
