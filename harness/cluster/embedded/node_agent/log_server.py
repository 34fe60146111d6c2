"""The kubelet's log endpoint, so ``pods/log`` (follow, previous, tailLines, limitBytes) works through the API server.

The API server proxies ``GET /api/v1/namespaces/NS/pods/POD/log`` to
``https://<node InternalIP>:<kubeletEndpoint port>/containerLogs/NS/POD/CONTAINER``.
It does not verify the kubelet's certificate unless told to, so a self-signed
one serves.
"""

from __future__ import annotations

import io
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from harness.cluster.embedded.pki import make_serving_cert

__all__ = ["LogServer", "LogLookup"]

LogLookup = Callable[[str, str, bool], "tuple[Path | None, Callable[[], bool]] | None"]
"""(namespace, pod, previous) → (the attempt's log file, has that attempt ended), or None for an unknown pod."""

_FOLLOW_POLL_SECONDS = 0.02
_CHUNK = 64 * 1024


class LogServer:
    """An HTTPS server on 127.0.0.1 (a free port) answering ``/containerLogs/...`` from ``lookup``."""

    def __init__(self, *, lookup: LogLookup, certdir: Path, name: str) -> None:
        cert = make_serving_cert(certdir, name=name)
        handler = _handler(lookup)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert.cert), str(cert.key))
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"logs-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(lookup: LogLookup) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # the body ends when the connection closes: right for follow

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            parts = url.path.strip("/").split("/")
            if len(parts) != 4 or parts[0] != "containerLogs":
                self.send_error(404, "only /containerLogs/NAMESPACE/POD/CONTAINER is served")
                return
            query = urllib.parse.parse_qs(url.query)

            def flag(key: str) -> bool:
                return query.get(key, ["false"])[0].lower() in ("true", "1")

            path, ended = lookup(parts[1], parts[2], flag("previous")) or (None, None)
            if path is None or ended is None:
                self.send_error(404, f"no logs for {parts[1]}/{parts[2]}")
                return
            tail = int(query["tailLines"][0]) if "tailLines" in query else None
            limit = int(query["limitBytes"][0]) if "limitBytes" in query else None
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            try:
                _stream(self.wfile, path, ended=ended, follow=flag("follow"), tail=tail, limit=limit)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                pass

    return Handler


def _stream(out: io.BufferedIOBase, path: Path, *, ended: Callable[[], bool], follow: bool, tail: int | None,
            limit: int | None) -> None:
    write = out.write
    flush = out.flush
    sent = 0
    with open(path, "rb") as f:
        if tail is not None:
            lines = f.read().splitlines(keepends=True)
            data = b"".join(lines[-tail:]) if tail > 0 else b""
            write(data[:limit] if limit is not None else data)
            flush()
            if not follow:
                return
            sent = len(data)
        while True:
            finished = ended()  # read after this, so nothing written before the end is missed
            chunk = f.read(_CHUNK)
            if chunk:
                if limit is not None:
                    chunk = chunk[: max(0, limit - sent)]
                write(chunk)
                flush()
                sent += len(chunk)
                if limit is not None and sent >= limit:
                    return
                continue
            if not follow or finished:
                return
            time.sleep(_FOLLOW_POLL_SECONDS)
