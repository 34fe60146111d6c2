"""The fault proxy: bytes forwarded intact, faults as asked (latency, jitter, bandwidth,
reset, black hole, S3 SlowDown), run-time changes, clean stop."""

from __future__ import annotations

import http.client
import http.server
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import lifecycle
from harness.errors import ServiceError
from harness.services.proxy import FaultProxy, ProxyFaults, ProxyStats
from harness.services.proxy._http import RequestFramer, RequestHead, Slowdown
from tests.moto_s3 import moto_s3
from tests.services.tcp_servers import TcpServer, echo

# -- helpers --------------------------------------------------------------------------


def recv_all(sock: socket.socket) -> bytes:
    parts = []
    while data := sock.recv(65536):
        parts.append(data)
    return b"".join(parts)


@pytest.fixture
def echo_server() -> Iterator[TcpServer]:
    server = TcpServer(echo)
    yield server
    server.close()


@pytest.fixture
def proxy(echo_server: TcpServer) -> Iterator[FaultProxy]:
    with FaultProxy(upstream_host="127.0.0.1", upstream_port=echo_server.port) as p:
        yield p


def connect(proxy: FaultProxy) -> socket.socket:
    sock = socket.create_connection(proxy.address, timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def round_trip(sock: socket.socket, message: bytes = b"x") -> float:
    start = time.monotonic()
    sock.sendall(message)
    got = b""
    while len(got) < len(message):
        data = sock.recv(65536)
        assert data, "connection closed"
        got += data
    assert got == message
    return time.monotonic() - start


# -- faults: validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"latency_ms": -1}, "latency_ms must be a finite number >= 0, got -1"),
        ({"jitter_ms": float("nan")}, "jitter_ms must be a finite number >= 0, got nan"),
        ({"reset_probability": 1.5}, "reset_probability must be a probability between 0 and 1, got 1.5"),
        ({"slowdown_probability": -0.1}, "slowdown_probability must be a probability between 0 and 1, got -0.1"),
        ({"bandwidth_bytes_per_s": 0}, "bandwidth_bytes_per_s must be a finite number > 0 or None, got 0"),
        ({"direction": "sideways"}, "direction must be one of both, upstream, downstream, got 'sideways'"),
    ],
)
def test_invalid_faults_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as err:
        ProxyFaults(**kwargs)
    assert str(err.value) == message


def test_address_before_start_is_a_clear_error() -> None:
    proxy = FaultProxy(upstream_host="127.0.0.1", upstream_port=9)
    with pytest.raises(ServiceError, match="not running"):
        proxy.url


def test_port_in_use_is_a_clear_error(proxy: FaultProxy) -> None:
    with pytest.raises(ServiceError, match="cannot listen on 127.0.0.1"):
        FaultProxy(upstream_host="127.0.0.1", upstream_port=9, listen_port=proxy.port).start()


# -- latency, jitter, bandwidth --------------------------------------------------------


def test_latency_adds_the_asked_round_trip_time(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        baseline = min(round_trip(sock) for _ in range(3))
        proxy.set_faults(ProxyFaults(latency_ms=100))  # one way, each direction
        rtts = [round_trip(sock) for _ in range(4)]
    assert baseline < 0.02
    # 200 ms asked; +/- 40 ms tolerance (the delay is never shorter than asked).
    assert all(0.195 <= rtt <= 0.240 for rtt in rtts), rtts


def test_one_direction_latency(proxy: FaultProxy) -> None:
    proxy.set_faults(ProxyFaults(latency_ms=100, direction="downstream"))
    with connect(proxy) as sock:
        rtts = [round_trip(sock) for _ in range(3)]
    assert all(0.095 <= rtt <= 0.140 for rtt in rtts), rtts


def test_jitter_stays_within_its_bounds(proxy: FaultProxy) -> None:
    proxy.set_faults(ProxyFaults(latency_ms=60, jitter_ms=40, seed=7))
    with connect(proxy) as sock:
        rtts = [round_trip(sock) for _ in range(12)]
    # Each one-way delay is in [20, 100] ms, so a round trip is in [40, 200] ms.
    assert all(0.039 <= rtt <= 0.240 for rtt in rtts), rtts
    assert max(rtts) - min(rtts) > 0.02, f"no jitter seen: {rtts}"


def test_delay_line_holds_data_instead_of_sleeping_per_chunk() -> None:
    received: list[tuple[float, int]] = []

    def sink(sock: socket.socket) -> None:
        while data := sock.recv(65536):
            received.append((time.monotonic(), len(data)))

    server = TcpServer(sink)
    try:
        with FaultProxy(upstream_host="127.0.0.1", upstream_port=server.port) as proxy:
            proxy.set_faults(ProxyFaults(latency_ms=100, direction="upstream"))
            with connect(proxy) as sock:
                start = time.monotonic()
                for _ in range(50):  # 50 chunks over ~100 ms
                    sock.sendall(b"c" * 1024)
                    time.sleep(0.002)
                sent = time.monotonic()
                sock.shutdown(socket.SHUT_WR)
                assert sock.recv(1) == b""
            total = received[-1][0] - start
    finally:
        server.close()
    assert sum(n for _, n in received) == 50 * 1024
    assert received[0][0] - start >= 0.099  # the first byte waited the latency
    # 100 ms + the time to send, not 50 x 100 ms as a chunk-by-chunk sleep would take.
    assert total <= (sent - start) + 0.100 + 0.080, total


def sender(payload: bytes) -> Callable[[socket.socket], None]:
    def send(sock: socket.socket) -> None:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        recv_all(sock)

    return send


def test_bandwidth_cap_downstream() -> None:
    server = TcpServer(sender(b"d" * (1 << 20)))
    try:
        with FaultProxy(upstream_host="127.0.0.1", upstream_port=server.port) as proxy:
            proxy.set_faults(ProxyFaults(bandwidth_bytes_per_s=512 * 1024))
            with connect(proxy) as sock:
                start = time.monotonic()
                data = recv_all(sock)
                elapsed = time.monotonic() - start
    finally:
        server.close()
    assert len(data) == 1 << 20
    assert 1.5 <= elapsed <= 2.5, elapsed  # 1 MiB at 512 KiB/s = 2 s, +/- 25 %


def test_bandwidth_cap_is_shared_by_connections() -> None:
    """The bucket models one throttled link: two connections share 512 KiB/s."""
    server = TcpServer(sender(b"s" * (512 * 1024)))
    results: list[int] = []
    try:
        with FaultProxy(upstream_host="127.0.0.1", upstream_port=server.port) as proxy:
            proxy.set_faults(ProxyFaults(bandwidth_bytes_per_s=512 * 1024, direction="downstream"))

            def fetch() -> None:
                with connect(proxy) as sock:
                    results.append(len(recv_all(sock)))

            start = time.monotonic()
            threads = [threading.Thread(target=fetch) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - start
    finally:
        server.close()
    assert results == [512 * 1024] * 2
    assert 1.5 <= elapsed <= 2.5, elapsed


def test_bandwidth_cap_upstream_and_clearing_it_midway(proxy: FaultProxy) -> None:
    proxy.set_faults(ProxyFaults(bandwidth_bytes_per_s=256 * 1024, direction="upstream"))
    with connect(proxy) as sock:
        start = time.monotonic()
        assert round_trip(sock, b"u" * (256 * 1024)) > 0.7  # ~1 s at 256 KiB/s
        proxy.clear()
        assert round_trip(sock, b"v" * (256 * 1024)) < 0.3
        assert time.monotonic() - start < 2.0


# -- bytes intact: property tests ------------------------------------------------------

FAULTS = st.sampled_from(
    [
        ProxyFaults(),
        ProxyFaults(latency_ms=5),
        ProxyFaults(latency_ms=5, jitter_ms=5),
        ProxyFaults(latency_ms=3, jitter_ms=3, direction="upstream"),
        ProxyFaults(jitter_ms=4, direction="downstream", bandwidth_bytes_per_s=20_000_000),
    ]
)
PAYLOAD = st.binary(max_size=4096) | st.integers(0, 300_000).map(lambda n: bytes(i * 7 % 251 for i in range(n)))


def chunked(data: bytes, sizes: list[int]) -> Iterator[bytes]:
    i = 0
    for size in sizes:
        if i >= len(data):
            return
        yield data[i : i + size]
        i += size
    if i < len(data):
        yield data[i:]


def send_in_chunks(sock: socket.socket, data: bytes, sizes: list[int], pauses: list[float]) -> None:
    for n, chunk in enumerate(chunked(data, sizes)):
        sock.sendall(chunk)
        if pauses and pauses[n % len(pauses)]:
            time.sleep(pauses[n % len(pauses)])


@pytest.fixture(scope="module")
def shared_echo() -> Iterator[tuple[TcpServer, FaultProxy]]:
    server = TcpServer(echo)
    with FaultProxy(upstream_host="127.0.0.1", upstream_port=server.port) as proxy:
        yield server, proxy
    server.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    payload=PAYLOAD,
    sizes=st.lists(st.integers(1, 70_000), min_size=1, max_size=20),
    pauses=st.lists(st.sampled_from([0.0, 0.0, 0.001, 0.003]), max_size=5),
    faults=FAULTS,
)
def test_echo_through_proxy_is_intact(
    shared_echo: tuple[TcpServer, FaultProxy], payload: bytes, sizes: list[int], pauses: list[float],
    faults: ProxyFaults,
) -> None:
    _, proxy = shared_echo
    proxy.set_faults(faults)
    with connect(proxy) as sock:
        got: list[bytes] = []
        reader = threading.Thread(target=lambda: got.append(recv_all(sock)))
        reader.start()
        send_in_chunks(sock, payload, sizes, pauses)
        sock.shutdown(socket.SHUT_WR)  # half-close: the echo comes back, then EOF
        reader.join(30)
    assert got == [payload]


@settings(max_examples=25, deadline=None)
@given(
    request=PAYLOAD,
    reply=PAYLOAD,
    sizes=st.lists(st.integers(1, 70_000), min_size=1, max_size=20),
    reply_sizes=st.lists(st.integers(1, 70_000), min_size=1, max_size=20),
    pauses=st.lists(st.sampled_from([0.0, 0.0, 0.001, 0.003]), max_size=5),
    faults=FAULTS,
)
def test_half_closed_request_then_reply_is_intact(
    request: bytes,
    reply: bytes,
    sizes: list[int],
    reply_sizes: list[int],
    pauses: list[float],
    faults: ProxyFaults,
) -> None:
    """The client sends and shuts down its write side; the server reads to EOF, then
    sends its own payload in random chunks and closes."""
    seen: list[bytes] = []

    def server_side(sock: socket.socket) -> None:
        seen.append(recv_all(sock))
        send_in_chunks(sock, reply, reply_sizes, pauses)
        sock.shutdown(socket.SHUT_WR)

    server = TcpServer(server_side)
    try:
        with FaultProxy(upstream_host="127.0.0.1", upstream_port=server.port) as proxy:
            proxy.set_faults(faults)
            with connect(proxy) as sock:
                send_in_chunks(sock, request, sizes, pauses)
                sock.shutdown(socket.SHUT_WR)
                got = recv_all(sock)
            stats = proxy.stats()
    finally:
        server.close()
    assert seen == [request]
    assert got == reply
    assert (stats.bytes_upstream, stats.bytes_downstream) == (len(request), len(reply))
    assert server.errors == []


# -- reset, black hole, run-time changes -----------------------------------------------


def test_reset_mode_resets_new_connections(proxy: FaultProxy) -> None:
    proxy.set_faults(ProxyFaults(reset_probability=1.0))
    for _ in range(3):
        try:  # the RST can come before connect() has returned
            with connect(proxy) as sock:
                sock.sendall(b"hello")
                data = sock.recv(10)
        except ConnectionResetError:
            data = b""
        assert data == b""
    assert proxy.stats().resets == 3
    proxy.clear()
    with connect(proxy) as sock:
        round_trip(sock)


def test_reset_probability_is_a_share_of_connections(proxy: FaultProxy) -> None:
    proxy.set_faults(ProxyFaults(reset_probability=0.5, seed=3))
    ok = 0
    for _ in range(40):
        try:
            with connect(proxy) as sock:
                round_trip(sock)
                ok += 1
        except (AssertionError, ConnectionResetError, BrokenPipeError):
            pass
    assert 8 <= ok <= 32
    assert proxy.stats().resets == 40 - ok


def test_reset_connections_resets_open_ones(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        round_trip(sock)
        proxy.reset_connections()
        with pytest.raises((ConnectionResetError, AssertionError, BrokenPipeError)):
            round_trip(sock)


def test_black_hole_then_cleared_restores_existing_and_new_connections(proxy: FaultProxy) -> None:
    with connect(proxy) as before:
        round_trip(before)
        proxy.set_faults(ProxyFaults(timeout=True))
        with connect(proxy) as during:
            before.sendall(b"held")
            during.sendall(b"also")
            for sock in (before, during):
                sock.settimeout(0.3)
                with pytest.raises(TimeoutError):
                    sock.recv(10)
                sock.settimeout(10)
            proxy.clear()
            # Held, not dropped: what was sent during the black hole arrives now.
            assert before.recv(10) == b"held"
            assert during.recv(10) == b"also"
            assert round_trip(before) < 0.05
            assert round_trip(during) < 0.05
    with connect(proxy) as after:
        assert round_trip(after) < 0.05


def test_latency_cleared_on_an_open_connection(proxy: FaultProxy) -> None:
    with connect(proxy) as sock:
        proxy.set_faults(ProxyFaults(latency_ms=150))
        assert round_trip(sock) >= 0.295
        proxy.clear()
        assert round_trip(sock) < 0.05


def test_refused_upstream_resets_the_client() -> None:
    port = lifecycle.free_port()
    with FaultProxy(upstream_host="127.0.0.1", upstream_port=port) as proxy:
        try:
            # The reset may arrive while the client is still connecting (a loaded machine) or after.
            with connect(proxy) as sock:
                assert sock.recv(10) == b""
        except ConnectionResetError:
            pass
        assert proxy.stats().connections == 1  # the proxy took the connection, then reset it


def test_stop_leaves_no_port_and_no_thread(echo_server: TcpServer) -> None:
    before = set(threading.enumerate())
    proxy = FaultProxy(upstream_host="127.0.0.1", upstream_port=echo_server.port)
    proxy.start()
    port = proxy.port
    open_conn = connect(proxy)
    round_trip(open_conn)
    proxy.set_faults(ProxyFaults(latency_ms=50))
    proxy.stop()
    proxy.stop()  # idempotent
    with open_conn:
        try:
            assert open_conn.recv(10) == b""
        except ConnectionResetError:
            pass
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    leftover = [t for t in threading.enumerate() if t not in before and t.name.startswith("fault-proxy")]
    assert leftover == []
    assert not [t for t in threading.enumerate() if t not in before and not t.daemon]


# -- HTTP framing ----------------------------------------------------------------------

REQUEST = st.builds(
    lambda method, body, chunked, sizes: (method, body, chunked, sizes),
    st.sampled_from(["GET", "PUT", "POST", "HEAD", "DELETE"]),
    st.binary(max_size=300),
    st.booleans(),
    st.lists(st.integers(1, 50), min_size=1, max_size=8),
)


def encode_request(method: str, body: bytes, chunked: bool, sizes: list[int]) -> bytes:
    head = f"{method} /bucket/key?x=1 HTTP/1.1\r\nHost: s3\r\nX-Odd:  a:b \r\n"
    if not chunked:
        return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    out = (head + "Transfer-Encoding: chunked\r\n\r\n").encode()
    for piece in chunked_pieces(body, sizes):
        out += f"{len(piece):x};ext=1\r\n".encode() + piece + b"\r\n"
    return out + b"0\r\nX-Trailer: t\r\n\r\n"


def chunked_pieces(body: bytes, sizes: list[int]) -> list[bytes]:
    return list(chunked(body, sizes))


@settings(max_examples=100, deadline=None)
@given(
    requests=st.lists(REQUEST, min_size=1, max_size=6),
    swallow=st.lists(st.booleans(), min_size=6, max_size=6),
    cuts=st.lists(st.integers(1, 200), min_size=1, max_size=30),
)
def test_framer_passes_requests_unchanged_and_swallows_whole_ones(
    requests: list[tuple[str, bytes, bool, list[int]]], swallow: list[bool], cuts: list[int]
) -> None:
    encoded = [encode_request(*r) for r in requests]
    heads: list[RequestHead] = []

    def on_request(head: RequestHead, can_swallow: bool) -> bool:
        assert can_swallow
        heads.append(head)
        return swallow[len(heads) - 1]

    framer = RequestFramer(hold=lambda: True, on_request=on_request)
    out: list[bytes | Slowdown] = []
    for piece in chunked(b"".join(encoded), cuts):
        out.extend(framer.feed(piece))
    first = next((i for i, s in enumerate(swallow[: len(requests)]) if s), None)
    forwarded = b"".join(s for s in out if isinstance(s, bytes))
    slowdowns = [s for s in out if isinstance(s, Slowdown)]
    if first is None:
        assert forwarded == b"".join(encoded)
        assert slowdowns == []
        assert len(heads) == len(requests)
    else:
        assert forwarded == b"".join(encoded[:first])
        assert [s.head.method for s in slowdowns] == [requests[first][0]]
        assert isinstance(out[-1], Slowdown)
        assert len(heads) == first + 1


@settings(max_examples=50, deadline=None)
@given(data=st.binary(max_size=2000), cuts=st.lists(st.integers(1, 300), min_size=1, max_size=20), hold=st.booleans())
def test_framer_never_changes_a_stream_it_does_not_swallow(data: bytes, cuts: list[int], hold: bool) -> None:
    framer = RequestFramer(hold=lambda: hold, on_request=lambda head, can: False)
    out: list[bytes | Slowdown] = []
    for piece in chunked(data, cuts):
        out.extend(framer.feed(piece))
    rest = framer.release_held()
    assert b"".join(s for s in out if isinstance(s, bytes)) + rest == data


def test_framer_answers_expect_continue_after_the_head() -> None:
    framer = RequestFramer(hold=lambda: True, on_request=lambda head, can: True)
    out = framer.feed(b"PUT /b/k HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    assert len(out) == 1 and isinstance(out[0], Slowdown) and out[0].head.expect_continue
    assert framer.feed(b"hello") == []


def test_chunked_request_is_consumed_and_answered_with_503() -> None:
    received: list[bytes] = []
    server = TcpServer(lambda sock: received.append(recv_all(sock)))
    try:
        with FaultProxy(upstream_host="127.0.0.1", upstream_port=server.port) as proxy:
            proxy.set_faults(ProxyFaults(slowdown_probability=1.0))
            conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
            conn.request("PUT", "/bucket/key", body=iter([b"abc", b"defgh"] * 100), encode_chunked=True)
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
            assert (resp.status, resp.getheader("Connection")) == (503, "close")
            assert b"<Code>SlowDown</Code>" in body
            assert int(resp.getheader("Content-Length")) == len(body)
            stats = proxy.stats()
            assert (stats.requests, stats.slowdowns, stats.bytes_upstream) == (1, 1, 0)
    finally:
        server.close()
    assert received in ([], [b""])  # the request never reached the upstream


def test_non_http_traffic_passes_a_slowdown_proxy_unchanged(proxy: FaultProxy) -> None:
    proxy.set_faults(ProxyFaults(slowdown_probability=1.0))
    with connect(proxy) as sock:
        assert round_trip(sock, b"\x00binary, not HTTP\r\n\r\n") < 0.05
    assert proxy.stats().slowdowns == 0


# -- S3 through the proxy --------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_port() -> Iterator[int]:
    with moto_s3() as url:
        port = urllib.parse.urlsplit(url).port
        assert port is not None
        yield port


def s3_client(endpoint: str, retries: dict):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries=retries, connect_timeout=5, read_timeout=10),
    )


def test_s3_slowdown_without_retries(moto_port: int) -> None:
    from botocore.exceptions import ClientError

    direct = s3_client(f"http://127.0.0.1:{moto_port}", {"total_max_attempts": 1})
    direct.create_bucket(Bucket="proxy-slow")
    direct.put_object(Bucket="proxy-slow", Key="k", Body=b"v")
    with FaultProxy(upstream_host="127.0.0.1", upstream_port=moto_port) as proxy:
        client = s3_client(proxy.url, {"total_max_attempts": 1, "mode": "standard"})
        assert client.get_object(Bucket="proxy-slow", Key="k")["Body"].read() == b"v"
        proxy.set_faults(ProxyFaults(slowdown_probability=1.0))
        for call in (
            lambda: client.put_object(Bucket="proxy-slow", Key="k2", Body=b"x" * 10_000),
            lambda: client.get_object(Bucket="proxy-slow", Key="k"),
            lambda: client.head_object(Bucket="proxy-slow", Key="k"),
        ):
            with pytest.raises(ClientError) as err:
                call()
            assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
            assert err.value.response["Error"]["Code"] in ("SlowDown", "503")  # HEAD has no body
        stats = proxy.stats()
        assert stats.slowdowns == 3
        assert stats.requests == 4
    assert "Contents" in direct.list_objects_v2(Bucket="proxy-slow")
    assert [o["Key"] for o in direct.list_objects_v2(Bucket="proxy-slow")["Contents"]] == ["k"]


def test_s3_slowdown_with_retries_succeeds_intact(moto_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    from botocore.retries import standard

    # botocore backs off up to 1 s x 2^attempt after a throttle; what matters here is
    # that the retries succeed, so keep the test fast with a short backoff.
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.01)
    rng = random.Random(11)
    with FaultProxy(upstream_host="127.0.0.1", upstream_port=moto_port) as proxy:
        client = s3_client(proxy.url, {"max_attempts": 10, "mode": "standard"})
        client.create_bucket(Bucket="proxy-retry")
        proxy.set_faults(ProxyFaults(slowdown_probability=0.3, seed=5))
        objects = {f"obj-{i}": rng.randbytes(rng.choice([0, 1, 1000, 70_000, 300_000])) for i in range(30)}
        for key, body in objects.items():
            client.put_object(Bucket="proxy-retry", Key=key, Body=body)
            assert client.get_object(Bucket="proxy-retry", Key=key)["Body"].read() == body
        stats: ProxyStats = proxy.stats()
    assert stats.slowdowns > 0
    assert stats.requests >= 61 + stats.slowdowns


class KeepAliveEcho(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive upstream answering each PUT with its body (Content-Length
    or chunked), unlike moto, which closes after every response."""

    protocol_version = "HTTP/1.1"

    def do_PUT(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while size := int(self.rfile.readline().split(b";")[0], 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b""):
                pass
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_slowdowns_on_keep_alive_connections_leave_other_requests_intact() -> None:
    import random

    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), KeepAliveEcho)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    rng = random.Random(4)
    answered = slowed = 0
    opened = 1  # http.client connections: one, then one more after each 503 but the last
    try:
        with FaultProxy(upstream_host="127.0.0.1", upstream_port=upstream.server_address[1]) as proxy:
            proxy.set_faults(ProxyFaults(slowdown_probability=0.3, latency_ms=2, jitter_ms=2, seed=2))
            conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
            for i in range(40):
                body = rng.randbytes(rng.choice([0, 10, 5000, 100_000]))
                if i % 3 == 0:
                    pieces = iter([body[:7], body[7:]]) if body else iter([])
                    conn.request("PUT", f"/b/{i}", body=pieces, encode_chunked=True)
                else:
                    conn.request("PUT", f"/b/{i}", body=body)
                resp = conn.getresponse()
                got = resp.read()
                if resp.status == 503:
                    slowed += 1
                    opened += i < 39
                    assert b"<Code>SlowDown</Code>" in got
                    conn.close()  # Connection: close; http.client reconnects on the next request
                else:
                    answered += 1
                    assert (resp.status, got) == (200, body)
            conn.close()
            stats = proxy.stats()
    finally:
        upstream.shutdown()
        upstream.server_close()
    assert slowed > 0 and answered > 0
    assert (stats.slowdowns, stats.requests) == (slowed, 40)
    assert stats.connections == opened  # kept alive until each 503
