"""Small TCP servers on 127.0.0.1 for the fault proxy's tests."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable


class TcpServer:
    """A threaded TCP server on 127.0.0.1 running ``handler(sock)`` per connection."""

    def __init__(self, handler: Callable[[socket.socket], None]) -> None:
        self._handler = handler
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._run, args=(sock,), daemon=True).start()

    def _run(self, sock: socket.socket) -> None:
        try:
            with sock:
                self._handler(sock)
        except OSError as exc:  # a reset test resets connections on purpose
            self.errors.append(exc)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self._listener.close()
        self._thread.join(5)


def echo(sock: socket.socket) -> None:
    while data := sock.recv(65536):
        sock.sendall(data)
    sock.shutdown(socket.SHUT_WR)
