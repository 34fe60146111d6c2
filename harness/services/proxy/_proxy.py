"""The fault proxy: an asyncio TCP relay on its own event-loop thread."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import socket
import struct
import threading
import uuid
from types import TracebackType
from typing import Literal

from harness.errors import ServiceError
from harness.services.proxy._faults import ProxyFaults, ProxyStats
from harness.services.proxy._http import RequestFramer, RequestHead, Slowdown, slowdown_response

__all__ = ["FaultProxy"]

Side = Literal["upstream", "downstream"]

READ_SIZE = 64 * 1024
# Bytes a direction may hold in its delay line before the proxy stops reading (and
# TCP pushes back on the sender). Enough for 100 ms of latency at ~80 MB/s.
MAX_HELD_BYTES = 8 * 1024 * 1024
# After a 503 the proxy reads and drops what the client still sends, for up to this
# long, before closing: closing with unread data would send an RST that can destroy
# the 503 before the client reads it (the "lingering close" of HTTP servers).
LINGER_S = 5.0
BURST_S = 0.05  # a token bucket holds this many seconds' worth of bytes


def _close_with_rst(writer: asyncio.StreamWriter) -> None:
    """Abort the connection so the peer sees a TCP RST, not a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _TokenBucket:
    """One direction's bandwidth cap, shared by every connection (a throttled link).
    Loop thread only."""

    def __init__(self, proxy: FaultProxy, side: Side) -> None:
        self._proxy = proxy
        self._side = side
        self._tokens = 0.0
        self._stamp: float | None = None

    def rate(self) -> float | None:
        faults = self._proxy.faults
        return faults.bandwidth_bytes_per_s if faults.applies_to(self._side) else None

    def max_chunk(self) -> int:
        rate = self.rate()
        return READ_SIZE if rate is None else max(1, min(READ_SIZE, int(rate * BURST_S)))

    async def take(self, n: int) -> None:
        """Wait until ``n`` bytes may pass (at once if there is no cap)."""
        loop = asyncio.get_running_loop()
        while True:
            rate = self.rate()
            if rate is None:
                self._stamp = None  # start full when a cap is set again
                return
            now = loop.time()
            capacity = max(1.0, rate * BURST_S)
            if self._stamp is None:
                self._tokens = capacity
            else:
                self._tokens = min(capacity, self._tokens + (now - self._stamp) * rate)
            self._stamp = now
            # A chunk read under an older, larger rate may exceed today's burst: let
            # it pass on a full bucket and go into debt, which later chunks repay.
            need = min(float(n), capacity)
            if self._tokens >= need:
                self._tokens -= n
                return
            await self._proxy._wait_for_change(now + (need - self._tokens) / rate)


class _Pipe:
    """One direction of a connection: reads ``src``, holds each chunk in a delay line
    until its release time, writes it to ``dst``. Loop thread only."""

    def __init__(
        self,
        conn: _Connection,
        side: Side,
        src: asyncio.StreamReader,
        dst: asyncio.StreamWriter,
        framer: RequestFramer | None,
    ) -> None:
        self.conn = conn
        self.side = side
        self.src = src
        self.dst = dst
        self.framer = framer
        self.queue: collections.deque[tuple[float, bytes | None]] = collections.deque()  # None = EOF
        self.held = 0
        self.last_release = 0.0
        self.stopped = False  # the writer must stop (a 503 ended this connection)
        self.closed = False  # EOF queued: nothing more may be pushed
        self.ready = asyncio.Event()
        self.space = asyncio.Event()

    def delay(self) -> float:
        """This chunk's delay in seconds, drawn now under the current faults."""
        faults = self.conn.proxy.faults
        if not faults.applies_to(self.side) or (faults.latency_ms == 0 and faults.jitter_ms == 0):
            return 0.0
        jitter = self.conn.proxy._uniform(-faults.jitter_ms, faults.jitter_ms) if faults.jitter_ms else 0.0
        return max(0.0, faults.latency_ms + jitter) / 1000.0

    def push(self, data: bytes | None, *, extra_delay: float = 0.0) -> None:
        """Queue ``data`` (None: EOF) for release at now + delay, never before what
        is already queued (bytes are never reordered)."""
        if self.closed:
            return
        now = asyncio.get_running_loop().time()
        release = max(self.last_release, now + self.delay() + extra_delay)
        self.last_release = release
        self.queue.append((release, data))
        if data is None:
            self.closed = True
        else:
            self.held += len(data)
        self.ready.set()

    async def read_loop(self) -> None:
        bucket = self.conn.proxy._buckets[self.side]
        while True:
            if self.held >= MAX_HELD_BYTES:
                self.space.clear()
                await self.space.wait()
                continue
            data = await self.src.read(bucket.max_chunk())
            if self.closed:
                return  # a 503 ended the connection; what came after it is dropped
            if not data:
                if self.framer is not None:
                    self._forward(self.framer.release_held())
                self.push(None)
                return
            await bucket.take(len(data))
            if self.framer is None:
                self._forward(data)
                continue
            for segment in self.framer.feed(data):
                if isinstance(segment, Slowdown):
                    self.conn.answer_slowdown(segment.head)
                    await self._linger()
                    return
                self._forward(segment)

    def _forward(self, data: bytes) -> None:
        if data:
            self.push(data)

    async def _linger(self) -> None:
        """Read and drop what the client still sends until it closes, or LINGER_S."""
        with contextlib.suppress(TimeoutError, OSError):
            async with asyncio.timeout(LINGER_S):
                while await self.src.read(READ_SIZE):
                    pass

    def must_stop(self) -> bool:
        """Whether a 503 ended this connection; a call, so each check after an ``await`` reads it afresh."""
        return self.stopped

    async def write_loop(self) -> None:
        proxy = self.conn.proxy
        loop = asyncio.get_running_loop()
        while True:
            if self.must_stop():
                return
            if not self.queue:
                self.ready.clear()
                await self.ready.wait()
                continue
            if proxy.faults.timeout:
                await proxy._wait_for_change(None)  # black hole: hold until cleared
                continue
            release, data = self.queue[0]
            wait = release - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            self.queue.popleft()
            if data is None:
                if self.dst.can_write_eof():
                    self.dst.write_eof()  # after what is buffered: half-close propagated
                return
            self.held -= len(data)
            self.space.set()
            self.dst.write(data)
            proxy._count(**{f"bytes_{self.side}": len(data)})
            try:
                await self.dst.drain()
            except ConnectionError:
                if self.must_stop():
                    return  # a 503 closed the dependency's side on purpose
                raise


class _Connection:
    """A client connection and its upstream connection. Loop thread only."""

    def __init__(self, proxy: FaultProxy, client: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        self.proxy = proxy
        self.client_reader, self.client_writer = client
        self.upstream_writer: asyncio.StreamWriter | None = None
        self.up: _Pipe | None = None
        self.down: _Pipe | None = None

    async def run(self) -> None:
        proxy = self.proxy
        try:
            reader, upstream_writer = await asyncio.open_connection(proxy.upstream_host, proxy.upstream_port)
        except BaseException as exc:
            _close_with_rst(self.client_writer)  # as a refused connection looks to the client
            if isinstance(exc, OSError):
                return
            raise
        self.upstream_writer = upstream_writer
        framer = RequestFramer(hold=proxy._slowdown_possible, on_request=proxy._on_request)
        self.up = _Pipe(self, "upstream", self.client_reader, upstream_writer, framer)
        self.down = _Pipe(self, "downstream", reader, self.client_writer, None)
        tasks = [
            asyncio.create_task(coro)
            for coro in (self.up.read_loop(), self.up.write_loop(), self.down.read_loop(), self.down.write_loop())
        ]
        failed = True  # unless all four directions end cleanly
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            failed = any(not t.cancelled() and t.exception() is not None for t in done)
        finally:
            try:
                pending = [t for t in tasks if not t.done()]
                for task in pending:
                    task.cancel()
                if pending:
                    await asyncio.gather(*pending, return_exceptions=True)
            except asyncio.CancelledError:
                failed = True  # the proxy is stopping
                raise
            finally:
                # Closed here whatever happens above (a cancel from stop() can land in
                # the gather): a transport left open outlives the loop and leaks.
                if failed:
                    # One side reset (or the proxy stops): reset the other, as a peer
                    # whose connection vanished would see it.
                    _close_with_rst(self.client_writer)
                    _close_with_rst(upstream_writer)
                else:
                    self.client_writer.close()
                    upstream_writer.close()

    def answer_slowdown(self, head: RequestHead) -> None:
        """Answer the swallowed request with 503 through the response delay line (it
        arrives after a round trip's worth of latency, as the server's answer would),
        then EOF; drop the upstream connection."""
        assert self.up is not None and self.down is not None and self.upstream_writer is not None
        self.up.stopped = True
        self.up.ready.set()
        self.up.queue.clear()
        if self.down.closed:
            return  # the dependency already closed this connection; nothing to answer on
        response = slowdown_response(head, request_id=uuid.uuid4().hex[:16].upper())
        self.down.push(response, extra_delay=self.up.delay())
        self.down.push(None)
        self.upstream_writer.close()
        self.proxy._count(slowdowns=1)

    def reset(self) -> None:
        _close_with_rst(self.client_writer)
        if self.upstream_writer is not None:
            _close_with_rst(self.upstream_writer)


class FaultProxy:
    """A TCP proxy from ``listen_host:listen_port`` to ``upstream_host:upstream_port``
    that injects :class:`ProxyFaults`, on an asyncio event loop in its own thread.

    Every accepted connection opens one upstream connection (a refused upstream
    resets the client). Bytes are forwarded in order, complete and unchanged, except
    for requests answered with 503 (the connection then ends) and connections reset
    by a fault. EOF from one side (a shutdown of its write half) is passed on after
    the data before it, and the other direction stays open until it ends too.

    Faults are set from any thread with :meth:`set_faults` / :meth:`clear`, before or
    after :meth:`start`; they apply at once to new *and* open connections (latency
    and bandwidth to chunks read from then on, the black hole to everything not yet
    forwarded, resets to new connections only). Use as a context manager, or call
    :meth:`start` and :meth:`stop`; :meth:`stop` is idempotent.

    Limits of the HTTP-aware mode: while ``slowdown_probability > 0`` each request
    head is held until its blank line arrives (to decide before any byte leaves), so
    a non-HTTP client whose first byte is an uppercase letter would stall until the
    fault is cleared; and a 503 ends the connection at once, so responses still owed
    to earlier *pipelined* requests on it are lost (boto3/urllib3 never pipeline).
    The black hole still opens the upstream connection; it only forwards nothing.
    """

    def __init__(
        self, *, upstream_host: str, upstream_port: int, listen_host: str = "127.0.0.1", listen_port: int = 0
    ) -> None:
        if not 0 < upstream_port < 65536:
            raise ValueError(f"upstream_port must be in 1..65535, got {upstream_port!r}")
        if not 0 <= listen_port < 65536:
            raise ValueError(f"listen_port must be in 0..65535 (0: any free port), got {listen_port!r}")
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.listen_host = listen_host
        self._listen_port = listen_port
        self._port = 0
        self._lock = threading.Lock()  # guards _faults, the RNGs and _counts across threads
        self._faults = ProxyFaults()
        # Two streams, so that the reset and slowdown decisions (one per connection or
        # request) do not depend on how many chunks the jitter was drawn for.
        self._rng = random.Random()
        self._jitter_rng = random.Random()
        self._counts = dict.fromkeys(
            ("connections", "bytes_upstream", "bytes_downstream", "resets", "slowdowns", "requests"), 0
        )
        self._active = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # The rest is used in the loop thread only.
        self._server: asyncio.Server | None = None
        self._changed: asyncio.Future[None] | None = None
        self._conns: set[_Connection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._buckets: dict[Side, _TokenBucket] = {
            "upstream": _TokenBucket(self, "upstream"),
            "downstream": _TokenBucket(self, "downstream"),
        }

    # -- public API ----------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` clients connect to; ServiceError if not started."""
        if self._thread is None:
            raise ServiceError("the fault proxy is not running; call start() or use it as a context manager")
        return self.listen_host, self._port

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def url(self) -> str:
        """``http://host:port`` of the proxy (e.g. an S3 endpoint URL through it)."""
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def faults(self) -> ProxyFaults:
        """The faults in force now."""
        return self._faults

    def set_faults(self, faults: ProxyFaults) -> None:
        """Apply ``faults`` (replacing the previous ones) from any thread. A ``seed``
        restarts the proxy's random draws from it."""
        if not isinstance(faults, ProxyFaults):
            raise TypeError(f"set_faults takes a ProxyFaults, got {type(faults).__name__}")
        with self._lock:
            self._faults = faults
            if faults.seed is not None:
                self._rng = random.Random(faults.seed)
                self._jitter_rng = random.Random(f"jitter:{faults.seed}")
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closing: nothing to wake
                loop.call_soon_threadsafe(self._faults_changed)

    def clear(self) -> None:
        """Remove every fault: forward unchanged."""
        self.set_faults(ProxyFaults())

    def stats(self) -> ProxyStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            return ProxyStats(active=self._active, **self._counts)

    def reset_connections(self) -> None:
        """Reset (TCP RST) every open connection, both sides, now. No-op if stopped."""
        loop = self._loop
        if loop is not None:
            asyncio.run_coroutine_threadsafe(self._reset_all(), loop).result(timeout=10)

    def start(self) -> None:
        """Listen and serve in a background thread; returns once listening. Raises
        ServiceError if the address cannot be bound. No-op if already running."""
        if self._thread is not None:
            return
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[OSError] = []

        def main() -> None:
            asyncio.set_event_loop(loop)
            try:
                try:
                    self._server = loop.run_until_complete(self._listen())
                except OSError as exc:
                    failure.append(exc)
                    return
                finally:
                    ready.set()
                loop.run_forever()
                loop.run_until_complete(self._shutdown())
            finally:
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=main, name=f"fault-proxy-{self.upstream_port}", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = self._loop = None
            raise ServiceError(
                f"the fault proxy cannot listen on {self.listen_host}:{self._listen_port}: {failure[0]}; "
                "pick another listen_port (0 picks a free one)"
            )

    def stop(self) -> None:
        """Close the listener and every connection (reset), end the thread. Idempotent."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(loop.stop)
        thread.join()
        self._thread = self._loop = None
        self._server = None

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- loop thread ---------------------------------------------------------------

    async def _listen(self) -> asyncio.Server:
        self._changed = asyncio.get_running_loop().create_future()
        server = await asyncio.start_server(self._accept, self.listen_host, self._listen_port)
        self._port = server.sockets[0].getsockname()[1]
        return server

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()
        await asyncio.get_running_loop().shutdown_default_executor()
        # Closed and aborted transports release their sockets in callbacks scheduled
        # with call_soon: let those run before the loop closes.
        for _ in range(3):
            await asyncio.sleep(0)

    async def _reset_all(self) -> None:
        for conn in list(self._conns):
            conn.reset()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            with self._lock:
                self._counts["connections"] += 1
                probability = self._faults.reset_probability
                reset = probability > 0 and self._rng.random() < probability
                if reset:
                    self._counts["resets"] += 1
            if reset:
                _close_with_rst(writer)
                return
            conn = _Connection(self, (reader, writer))
            self._conns.add(conn)
            with self._lock:
                self._active += 1
            try:
                await conn.run()
            finally:
                self._conns.discard(conn)
                with self._lock:
                    self._active -= 1
        except asyncio.CancelledError:
            # Only _shutdown cancels this task. End it normally: Python 3.11's
            # start_server callback calls task.exception() on the finished handler
            # task, which raises (and logs a traceback) for a cancelled one.
            pass
        finally:
            self._tasks.discard(task)

    def _faults_changed(self) -> None:
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)
        self._changed = asyncio.get_running_loop().create_future()
        if self._faults.slowdown_probability == 0:
            # No request can be swallowed now: forward heads held for that decision.
            for conn in self._conns:
                if conn.up is not None and conn.up.framer is not None and not conn.up.closed:
                    conn.up._forward(conn.up.framer.release_held())

    async def _wait_for_change(self, deadline: float | None) -> None:
        """Sleep until the loop time ``deadline`` (None: no limit) or the next
        set_faults, whichever comes first."""
        assert self._changed is not None
        timeout = None if deadline is None else max(0.0, deadline - asyncio.get_running_loop().time())
        # asyncio.wait never cancels the shared future, even when this task is cancelled.
        await asyncio.wait({self._changed}, timeout=timeout)

    def _uniform(self, low: float, high: float) -> float:
        with self._lock:
            return self._jitter_rng.uniform(low, high)

    def _slowdown_possible(self) -> bool:
        return self._faults.slowdown_probability > 0

    def _on_request(self, head: RequestHead, can_swallow: bool) -> bool:
        with self._lock:
            self._counts["requests"] += 1
            probability = self._faults.slowdown_probability
            return can_swallow and probability > 0 and self._rng.random() < probability

    def _count(self, **increments: int) -> None:
        with self._lock:
            for name, value in increments.items():
                self._counts[name] += value
