"""Driving a fault proxy from another process: the :class:`ProxyControl` protocol, an HTTP
control API in front of a :class:`FaultProxy` and a client for it.

On kind and existing clusters the proxy runs as its own process (a Deployment in
front of MinIO, ``python -m harness.services.proxy``); the harness drives it with
:class:`ProxyControlClient` exactly as it drives an in-process :class:`FaultProxy`.

The API (JSON in and out; ``PUT`` takes an object of :class:`ProxyFaults` fields,
missing ones meaning their defaults)::

    GET    /healthz -> 200 {"ok": true}
    GET    /faults  -> 200 {"faults": {...}, "active": bool, "stats": {...}}
    PUT    /faults  -> sets them; 200 and the same document as GET
    DELETE /faults  -> clears them; 200 and the same document as GET
    GET    /stats   -> 200 {...ProxyStats fields...}

A body that is not a JSON object, an unknown field or a value ProxyFaults rejects
answers 400 ``{"error": "<one line naming the field and what is allowed>"}``; an
unknown path 404, a known path with the wrong method 405 (with ``Allow``).
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, fields
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from harness.errors import ServiceError
from harness.services.proxy._faults import ProxyFaults, ProxyStats
from harness.services.proxy._proxy import FaultProxy

__all__ = ["ProxyControl", "ProxyControlClient", "ProxyControlServer", "ProxyUnreachableError"]

FAULT_FIELDS = tuple(f.name for f in fields(ProxyFaults))
MAX_BODY_BYTES = 64 * 1024
# Known paths and the methods each takes (anything else on them: 405).
_T = TypeVar("_T")
_ROUTES: dict[str, tuple[str, ...]] = {"/healthz": ("GET",), "/faults": ("GET", "PUT", "DELETE"), "/stats": ("GET",)}


class ProxyControl(Protocol):
    """What the harness needs of a fault proxy, in its process or not.

    :class:`FaultProxy` (in process) and :class:`ProxyControlClient` (over HTTP)
    both satisfy it. ``set_faults`` replaces every fault at once and raises
    ValueError when the proxy rejects a value; ``clear`` restores the defaults;
    ``stats`` is a snapshot of counters that only grow.
    """

    @property
    def faults(self) -> ProxyFaults:
        """The faults in force now."""
        ...

    def set_faults(self, faults: ProxyFaults) -> None: ...

    def clear(self) -> None: ...

    def stats(self) -> ProxyStats: ...


def faults_document(proxy: ProxyControl) -> dict[str, Any]:
    """The document ``GET /faults`` answers: the faults, whether any is set (they differ
    from the defaults ``DELETE /faults`` restores) and the counters."""
    faults = proxy.faults
    return {"faults": asdict(faults), "active": faults != ProxyFaults(), "stats": asdict(proxy.stats())}


def parse_faults(body: bytes) -> ProxyFaults:
    """A PUT body (a JSON object of ProxyFaults fields, missing ones default) as ProxyFaults.
    ValueError with one line naming the field and what is allowed."""
    try:
        data = json.loads(body)
    except ValueError as exc:  # JSONDecodeError and bad UTF-8 both are
        raise ValueError(f"the body is not JSON ({exc}); send an object of fields {', '.join(FAULT_FIELDS)}") from None
    if not isinstance(data, dict):
        raise ValueError(f"the body must be a JSON object of fields {', '.join(FAULT_FIELDS)}, "
                         f"got {type(data).__name__}")
    unknown = sorted(set(data) - set(FAULT_FIELDS))
    if unknown:
        raise ValueError(f"unknown field {', '.join(map(repr, unknown))}; allowed: {', '.join(FAULT_FIELDS)}")
    try:
        return ProxyFaults(**data)
    except TypeError as exc:  # ProxyFaults checks types itself; this is only a safety net
        raise ValueError(str(exc)) from None


class _Handler(BaseHTTPRequestHandler):
    """One request of the control API. HTTP/1.0: one request per connection, so that
    stopping the server never waits on an idle keep-alive client."""

    server: _HTTPServer
    timeout = 10  # a client that stalls mid-request is dropped after this long

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_OPTIONS(self) -> None:
        self._dispatch("OPTIONS")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors http.server answers itself (a malformed request line, ...), as JSON too."""
        self.close_connection = True
        self._send(HTTPStatus(code), {"error": " ".join((message or HTTPStatus(code).phrase).split())})

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the harness reports what it changes in its own history."""

    def _dispatch(self, method: str) -> None:
        try:
            self._route(method)
        except Exception as exc:  # answer, so that a client never takes a failing proxy for a gone one
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(exc).__name__}: {exc}".replace("\n", " ")})

    def _route(self, method: str) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if len(path) > 1:
            path = path.rstrip("/")
        allowed = _ROUTES.get(path)
        if allowed is None:
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no such path {path}; the control API serves "
                                                       f"{', '.join(_ROUTES)}"})
            return
        if method not in allowed:
            self._send(HTTPStatus.METHOD_NOT_ALLOWED,
                       {"error": f"{method} is not allowed on {path}; allowed: {', '.join(allowed)}"},
                       headers={"Allow": ", ".join(allowed)})
            return
        proxy = self.server.proxy
        if path == "/healthz":
            self._send(HTTPStatus.OK, {"ok": True})
        elif path == "/stats":
            self._send(HTTPStatus.OK, asdict(proxy.stats()))
        elif method == "GET":
            self._send(HTTPStatus.OK, faults_document(proxy))
        elif method == "DELETE":
            proxy.clear()
            self._send(HTTPStatus.OK, faults_document(proxy))
        else:  # PUT /faults
            try:
                proxy.set_faults(parse_faults(self._body()))
            except ValueError as exc:
                self._send(HTTPStatus.BAD_REQUEST, {"error": str(exc).replace("\n", " ")})
                return
            self._send(HTTPStatus.OK, faults_document(proxy))

    def _body(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ValueError("Content-Length is not a number") from None
        if length > MAX_BODY_BYTES:
            raise ValueError(f"the body is {length} bytes; at most {MAX_BODY_BYTES} are accepted")
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: HTTPStatus, document: object, *, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(document).encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() frees the port without waiting on a stalled client

    def __init__(self, address: tuple[str, int], proxy: ProxyControl) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.proxy = proxy
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, which can hang for seconds
        # in a container without DNS; the name is unused here.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])


class ProxyControlServer:
    """The HTTP control API (see the module docstring) over ``proxy``, served from a
    daemon thread on ``host:port`` (port 0: a free one).

    Use as a context manager, or call :meth:`start` and :meth:`stop` (idempotent);
    ``start`` returns once listening and raises ServiceError if the address cannot
    be bound. It does not start or stop ``proxy``.
    """

    def __init__(self, proxy: ProxyControl, *, host: str = "127.0.0.1", port: int = 0) -> None:
        if not 0 <= port < 65536:
            raise ValueError(f"port must be in 0..65535 (0: any free port), got {port!r}")
        self.proxy = proxy
        self.host = host
        self._requested_port = port
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port listened on; ServiceError if not started."""
        if self._server is None:
            raise ServiceError("the fault proxy's control API is not running; call start() or use it as a "
                               "context manager")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://host:port`` of the API (the host as given, IPv6 in brackets)."""
        port = self.port
        return f"http://[{self.host}]:{port}" if ":" in self.host else f"http://{self.host}:{port}"

    def start(self) -> None:
        """Listen and serve in a daemon thread. No-op if already running."""
        if self._server is not None:
            return
        try:
            server = _HTTPServer((self.host, self._requested_port), self.proxy)
        except OSError as exc:
            raise ServiceError(f"the fault proxy's control API cannot listen on {self.host}:{self._requested_port}: "
                               f"{exc}; pick another port (0 picks a free one)") from None
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"proxy-control-{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the listening socket (the port is free on return). Idempotent."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join()
        self._server = self._thread = None

    def __enter__(self) -> ProxyControlServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class ProxyUnreachableError(ServiceError):
    """The control API does not answer at all (refused, timed out, unknown host, reset):
    the proxy is not running there, or cannot be reached from here."""


class ProxyControlClient:
    """:class:`ProxyControl` over the HTTP control API at ``url`` (``http://host:port``).

    Every call is one request (``faults`` too: a GET each time), bounded by
    ``timeout`` seconds. HTTP(S)_PROXY variables are ignored: the API is reached
    directly. Errors: ValueError with the server's message when it rejects faults
    (a 400, as :class:`ProxyFaults` would locally); :class:`ProxyUnreachableError`
    (a ServiceError) when nothing answers; ServiceError when something answers
    that is not the control API.
    """

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"the fault proxy's control URL must look like http://host:port, got {url!r}")
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __repr__(self) -> str:
        return f"ProxyControlClient({self.url!r})"

    @property
    def faults(self) -> ProxyFaults:
        """The faults in force now (asked of the proxy each time)."""
        return self._read(ProxyFaults, self.document().get("faults"), "/faults")

    def document(self) -> dict[str, Any]:
        """``GET /faults``: ``{"faults": {...}, "active": bool, "stats": {...}}``."""
        return self._request("GET", "/faults")

    def set_faults(self, faults: ProxyFaults) -> None:
        """Replace the proxy's faults with ``faults``."""
        if not isinstance(faults, ProxyFaults):
            raise TypeError(f"set_faults takes a ProxyFaults, got {type(faults).__name__}")
        self._request("PUT", "/faults", asdict(faults))

    def clear(self) -> None:
        """Remove every fault: the proxy forwards unchanged."""
        self._request("DELETE", "/faults")

    def stats(self) -> ProxyStats:
        """The proxy's counters now."""
        return self._read(ProxyStats, self._request("GET", "/stats"), "/stats")

    def healthy(self) -> bool:
        """Whether the control API answers ``GET /healthz`` (never raises)."""
        try:
            return self._request("GET", "/healthz").get("ok") is True
        except ServiceError:
            return False

    def _read(self, cls: Callable[..., _T], data: object, path: str) -> _T:
        """``cls(**data)``; ServiceError if the answer does not fit (another version of the proxy)."""
        try:
            if not isinstance(data, dict):
                raise TypeError(f"expected an object, got {type(data).__name__}")
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise ServiceError(f"the fault proxy's control API at {self.url} answered GET {path} with a document "
                               f"this harness cannot read ({exc}); do the proxy and the harness run the same "
                               "version?") from None

    def _request(self, method: str, path: str, body: object = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            with contextlib.closing(exc):
                try:
                    message = _error_message(exc.read())
                except OSError:
                    message = ""
            if exc.code == HTTPStatus.BAD_REQUEST and method == "PUT":
                raise ValueError(message or f"the fault proxy at {self.url} rejected these faults") from None
            raise ServiceError(f"the fault proxy's control API at {self.url} answered {exc.code} to {method} {path}"
                               f"{': ' + message if message else ''}; is {self.url} its control port?") from None
        except urllib.error.URLError as exc:
            raise self._unreachable(exc.reason) from None
        except OSError as exc:  # a timeout or reset while reading the answer
            raise self._unreachable(exc) from None
        try:
            document = json.loads(raw)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise ServiceError(f"{self.url} answered {method} {path} with something other than the fault proxy's "
                               f"control API JSON; is {self.url} its control port?")
        return document

    def _unreachable(self, reason: object) -> ProxyUnreachableError:
        if isinstance(reason, ConnectionRefusedError):
            why = "connection refused"
        elif isinstance(reason, TimeoutError):
            why = f"no answer in {self.timeout:g} s"
        elif isinstance(reason, socket.gaierror):
            why = f"unknown host: {reason.strerror or reason}"
        elif isinstance(reason, ConnectionResetError):
            why = "connection reset"
        elif isinstance(reason, OSError) and reason.strerror:
            why = reason.strerror
        else:
            why = str(reason) or type(reason).__name__
        return ProxyUnreachableError(f"the fault proxy's control API at {self.url} does not answer ({why}); "
                                     "is the proxy running?")


def _error_message(raw: bytes) -> str:
    """The ``error`` of an error document, else its text, on one line."""
    try:
        document = json.loads(raw)
    except ValueError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("error"), str):
        text = document["error"]
    else:
        text = raw.decode("utf-8", "replace")
    return " ".join(text.split())[:500]


if TYPE_CHECKING:  # mypy checks that both implementations satisfy the protocol
    def _in_process(proxy: FaultProxy) -> ProxyControl:
        return proxy

    def _over_http(client: ProxyControlClient) -> ProxyControl:
        return client
