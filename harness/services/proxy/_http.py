"""Just enough HTTP/1.1 request framing to answer chosen S3 requests with ``503 SlowDown``.

:class:`RequestFramer` follows a client's byte stream (request line, headers, then a
``Content-Length`` or ``Transfer-Encoding: chunked`` body, RFC 9112 section 6) and
tells, for each request, whether its bytes pass or are swallowed. It never changes
the bytes it passes. Anything it cannot frame (not HTTP, a transfer coding other than
chunked, an Upgrade/CONNECT) switches it to pass-through for the rest of the
connection, so a non-HTTP protocol is forwarded untouched.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RequestHead", "Slowdown", "RequestFramer", "parse_request_head", "slowdown_response"]

MAX_HEAD_BYTES = 64 * 1024  # a larger head is not a request we care to frame
MAX_LINE_BYTES = 8 * 1024  # a chunk-size or trailer line

_REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([^\x00-\x20\x7f]+) HTTP/1\.([01])")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_PRINTABLE = re.compile(rb"[\x20-\x7e]*")


@dataclass(frozen=True)
class RequestHead:
    """A parsed request line and header block. ``content_length`` is None for a
    chunked body; header names are lower-cased, in the order sent."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    content_length: int | None
    chunked: bool
    expect_continue: bool
    upgrade: bool


@dataclass(frozen=True)
class Slowdown:
    """Emitted by :meth:`RequestFramer.feed` where a swallowed request ends (or, with
    ``Expect: 100-continue``, where its head ends): answer it now."""

    head: RequestHead


def parse_request_head(block: bytes) -> RequestHead | None:
    """Parse a request head ending in CRLF CRLF; None if it is not one this framer can
    delimit (bad syntax, obsolete line folding, a transfer coding other than chunked,
    conflicting Content-Length values)."""
    if not block.endswith(b"\r\n\r\n"):
        return None
    lines = block[:-4].split(b"\r\n")
    match = _REQUEST_LINE.fullmatch(lines[0])
    if match is None:
        return None
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or _TOKEN.fullmatch(name) is None:  # also rejects obs-fold (leading space)
            return None
        headers.append((name.decode("ascii").lower(), value.strip(b" \t").decode("latin-1")))

    def values(name: str) -> list[str]:
        return [item.strip() for key, value in headers if key == name for item in value.split(",")]

    chunked = False
    content_length: int | None = 0
    codings = [c.lower() for c in values("transfer-encoding") if c]
    if codings:
        # RFC 9112 6.3: Transfer-Encoding overrides Content-Length; only a final
        # "chunked" delimits a request body.
        if codings[-1] != "chunked":
            return None
        chunked, content_length = True, None
    else:
        lengths = set(values("content-length"))
        if len(lengths) > 1 or any(not n.isdigit() for n in lengths):
            return None
        if lengths:
            content_length = int(lengths.pop())
    method = match.group(1).decode("ascii")
    connection = [c.lower() for c in values("connection")]
    return RequestHead(
        method=method,
        target=match.group(2).decode("latin-1"),
        headers=tuple(headers),
        content_length=content_length,
        chunked=chunked,
        expect_continue="100-continue" in [e.lower() for e in values("expect")],
        upgrade=method == "CONNECT" or ("upgrade" in connection and bool(values("upgrade"))),
    )


def slowdown_response(head: RequestHead, *, request_id: str) -> bytes:
    """S3's throttling answer (``503 SlowDown``, XML error body, as S3 sends it) with
    Content-Length and ``Connection: close``; no body for a HEAD request."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
        f"<RequestId>{request_id}</RequestId><HostId>harness-fault-proxy</HostId></Error>"
    ).encode()
    lines = [
        "HTTP/1.1 503 Slow Down",
        "Content-Type: application/xml",
        f"Content-Length: {len(body)}",
        "Connection: close",
        f"x-amz-request-id: {request_id}",
        "x-amz-id-2: harness-fault-proxy",
        f"Date: {email.utils.formatdate(usegmt=True)}",
        "Server: harness-fault-proxy",
    ]
    head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
    return head_bytes if head.method == "HEAD" else head_bytes + body


_HEAD, _BODY, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILER, _PASS, _DISCARD = range(8)


class RequestFramer:
    """Splits a client's stream into requests and decides, per request, pass or swallow.

    ``hold()`` is asked when a request's first byte arrives: True holds the head's bytes
    until the head is complete (needed to be able to swallow the request), False passes
    them at once. ``on_request(head, can_swallow)`` is called for every complete head;
    it returns True to swallow that request (only honoured when ``can_swallow``: the
    head was held and is not an Upgrade/CONNECT). A swallowed request's bytes are
    dropped up to its end, then :meth:`feed` emits :class:`Slowdown` and drops every
    later byte (the connection is about to close).

    Contract: concatenating the ``bytes`` segments of all :meth:`feed` results (plus
    :meth:`release_held`) gives the input minus the swallowed requests, unchanged.
    """

    def __init__(self, *, hold: Callable[[], bool], on_request: Callable[[RequestHead, bool], bool]) -> None:
        self._hold = hold
        self._on_request = on_request
        self._state = _HEAD
        self._held = False
        self._buf = bytearray()  # the head so far, or the current chunk-size/trailer line
        self._remaining = 0
        self._dropping: RequestHead | None = None  # the request being swallowed
        self._upgrade = False

    @property
    def holding(self) -> bool:
        """Whether bytes are held back waiting for the end of a request head."""
        return self._state == _HEAD and self._held and bool(self._buf)

    @property
    def passthrough(self) -> bool:
        return self._state == _PASS

    def release_held(self) -> bytes:
        """Stop holding the current partial head (e.g. the slowdown fault was cleared):
        return its bytes to forward now; the head is still parsed when it completes."""
        if not self.holding:
            return b""
        self._held = False
        return bytes(self._buf)

    def feed(self, data: bytes) -> list[bytes | Slowdown]:
        """Consume ``data``; return what to forward, in order, and any :class:`Slowdown`."""
        out: list[bytes | Slowdown] = []
        fwd = bytearray()
        i, n = 0, len(data)
        while i < n:
            state = self._state
            if state == _PASS:
                fwd += data[i:]
                break
            if state == _DISCARD:
                break
            if state == _HEAD:
                if not self._buf:
                    # RFC 9112 2.2: ignore empty lines before a request line.
                    while i < n and data[i] in b"\r\n":
                        fwd.append(data[i])
                        i += 1
                    if i == n:
                        break
                    self._held = self._hold()
                i = self._feed_head(data, i, fwd, out)
            elif state in (_BODY, _CHUNK_DATA):
                take = min(self._remaining, n - i)
                if self._dropping is None:
                    fwd += data[i : i + take]
                i += take
                self._remaining -= take
                if self._remaining == 0:
                    if state == _BODY:
                        self._end_message(fwd, out)
                    else:
                        self._state = _CHUNK_END
            else:
                i = self._feed_line(data, i, fwd, out)
        if fwd:
            out.append(bytes(fwd))
        return out

    def _feed_head(self, data: bytes, i: int, fwd: bytearray, out: list[bytes | Slowdown]) -> int:
        old = len(self._buf)
        self._buf += data[i:]
        end = self._buf.find(b"\r\n\r\n", max(0, old - 3))
        if end < 0:
            # (A CR at the very end may be the first half of a CRLF split across reads.)
            first_line = self._buf.split(b"\r\n", 1)[0].removesuffix(b"\r")
            plausible = (
                len(self._buf) <= MAX_HEAD_BYTES
                and 0x41 <= self._buf[0] <= 0x5A  # methods start with an uppercase letter
                and _PRINTABLE.fullmatch(first_line) is not None
            )
            if not plausible:
                if self._held:
                    fwd += self._buf[:old]
                fwd += data[i:]
                self._buf.clear()
                self._state = _PASS
            elif not self._held:
                fwd += data[i:]
            return len(data)
        used = end + 4 - old
        block = bytes(self._buf[: end + 4])
        self._buf.clear()
        if not self._held:
            fwd += data[i : i + used]
        i += used
        head = parse_request_head(block)
        if head is None:
            if self._held:
                fwd += block
            self._state = _PASS
            return i
        swallow = self._on_request(head, self._held and not head.upgrade)
        if swallow and self._held and not head.upgrade:
            self._dropping = head
            if head.expect_continue:
                # The client waits for "100 Continue" before sending the body: answer
                # now (as a server would) rather than wait for a body that won't come.
                self._end_message(fwd, out)
                return i
        elif self._held:
            fwd += block
        self._upgrade = head.upgrade
        if head.chunked:
            self._state = _CHUNK_SIZE
        elif head.content_length:
            self._state, self._remaining = _BODY, head.content_length
        else:
            self._end_message(fwd, out)
        return i

    def _feed_line(self, data: bytes, i: int, fwd: bytearray, out: list[bytes | Slowdown]) -> int:
        """Chunk-size line, the CRLF after chunk data, or a trailer line."""
        old = len(self._buf)
        self._buf += data[i:]
        end = self._buf.find(b"\r\n", max(0, old - 1))
        if end < 0:
            if self._dropping is None:
                fwd += data[i:]
            if len(self._buf) > MAX_LINE_BYTES:
                self._malformed(fwd, out)
            return len(data)
        used = end + 2 - old
        if self._dropping is None:
            fwd += data[i : i + used]
        line = bytes(self._buf[:end])
        self._buf.clear()
        state = self._state
        if state == _CHUNK_SIZE:
            size_text = line.split(b";", 1)[0].strip(b" \t")
            try:
                size = int(size_text, 16) if re.fullmatch(rb"[0-9A-Fa-f]+", size_text) else -1
            except ValueError:
                size = -1
            if size < 0:
                self._malformed(fwd, out)
            elif size == 0:
                self._state = _TRAILER
            else:
                self._state, self._remaining = _CHUNK_DATA, size
        elif state == _CHUNK_END:
            if line:
                self._malformed(fwd, out)
            else:
                self._state = _CHUNK_SIZE
        elif not line:  # _TRAILER: an empty line ends the message
            self._end_message(fwd, out)
        return i + used

    def _end_message(self, fwd: bytearray, out: list[bytes | Slowdown]) -> None:
        if self._dropping is not None:
            if fwd:
                out.append(bytes(fwd))
                fwd.clear()
            out.append(Slowdown(self._dropping))
            self._state = _DISCARD
        elif self._upgrade:
            self._state = _PASS  # the connection now speaks another protocol
        else:
            self._state = _HEAD

    def _malformed(self, fwd: bytearray, out: list[bytes | Slowdown]) -> None:
        if self._dropping is not None:
            self._end_message(fwd, out)  # answer the swallowed request now; drop the rest
        else:
            self._state = _PASS
