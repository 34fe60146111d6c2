"""The fault proxy driven over HTTP: the control API, its client, the standalone
``python -m harness.services.proxy`` and the ``proxy-faults`` undo record."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, cast

import pytest

from harness.cluster.base import Cluster
from harness.errors import HarnessError, ServiceError
from harness.faults import proxy_faults
from harness.faults.recorder import FaultRecorder
from harness.faults.role import FaultContext
from harness.history.events import FaultHealed
from harness.lifecycle import free_port
from harness.services.proxy import (
    FaultProxy,
    ProxyControl,
    ProxyControlClient,
    ProxyControlServer,
    ProxyFaults,
    ProxyStats,
)
from harness.services.proxy.control import ProxyUnreachableError
from harness.services.proxy.undo_kind import KIND, add_proxy_faults_record
from harness.undo import UndoLog, heal
from tests.cluster.conftest import Collector
from tests.services.tcp_servers import TcpServer, echo

ROOT = Path(__file__).resolve().parents[2]

# A value other than the default for every ProxyFaults field.
NON_DEFAULT: dict[str, Any] = {
    "latency_ms": 12.5,
    "jitter_ms": 3.0,
    "bandwidth_bytes_per_s": 65536.0,
    "reset_probability": 0.25,
    "timeout": True,
    "slowdown_probability": 0.5,
    "direction": "downstream",
    "seed": 42,
}


def test_every_field_has_a_non_default_value_here() -> None:
    assert set(NON_DEFAULT) == {f.name for f in fields(ProxyFaults)}
    assert all(getattr(ProxyFaults(), name) != value for name, value in NON_DEFAULT.items())


# -- helpers --------------------------------------------------------------------------


@pytest.fixture
def echo_server() -> Iterator[TcpServer]:
    server = TcpServer(echo)
    yield server
    server.close()


@pytest.fixture
def proxy(echo_server: TcpServer) -> Iterator[FaultProxy]:
    with FaultProxy(upstream_host="127.0.0.1", upstream_port=echo_server.port) as p:
        yield p


@pytest.fixture
def server(proxy: FaultProxy) -> Iterator[ProxyControlServer]:
    with ProxyControlServer(proxy) as s:
        yield s


@pytest.fixture
def client(server: ProxyControlServer) -> ProxyControlClient:
    return ProxyControlClient(server.url)


def call(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, dict[str, str], Any]:
    """(status, headers, JSON document) of one request, whatever the status."""
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), json.loads(exc.read())



def round_trip(port: int, payload: bytes = b"ping") -> tuple[bytes, float]:
    """Send ``payload`` through the proxy at ``port``, half-close, read the echo: (echo, seconds)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        start = time.monotonic()
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while data := sock.recv(65536):
            received += data
        return received, time.monotonic() - start


# -- the API and its client ------------------------------------------------------------


def test_fault_proxy_and_client_are_proxy_controls(proxy: FaultProxy, client: ProxyControlClient) -> None:
    implementations: list[ProxyControl] = [proxy, client]  # mypy checks the protocol; this the members
    for implementation in implementations:
        assert isinstance(implementation.faults, ProxyFaults)
        for name in ("set_faults", "clear", "stats"):
            assert callable(getattr(implementation, name))


@pytest.mark.parametrize("name", sorted(NON_DEFAULT))
def test_each_field_round_trips_to_the_real_proxy(
    name: str, proxy: FaultProxy, client: ProxyControlClient, server: ProxyControlServer
) -> None:
    faults = ProxyFaults(**{name: NON_DEFAULT[name]})
    client.set_faults(faults)
    assert proxy.faults == faults  # applied to the proxy itself, not only echoed back
    assert client.faults == faults
    status, _, document = call(server.url + "/faults")
    assert status == 200 and document["active"] is True
    assert document["faults"] == {f.name: getattr(faults, f.name) for f in fields(ProxyFaults)}


def test_all_fields_at_once_then_delete_restores_the_defaults(
    proxy: FaultProxy, client: ProxyControlClient, server: ProxyControlServer
) -> None:
    faults = ProxyFaults(**NON_DEFAULT)
    client.set_faults(faults)
    assert proxy.faults == faults and client.faults == faults
    status, _, document = call(server.url + "/faults", "DELETE")
    assert status == 200 and document["active"] is False
    assert proxy.faults == ProxyFaults() and client.faults == ProxyFaults()
    assert document["faults"]["bandwidth_bytes_per_s"] is None and document["faults"]["seed"] is None  # JSON null


def test_put_replaces_every_field_missing_ones_default(proxy: FaultProxy, server: ProxyControlServer) -> None:
    proxy.set_faults(ProxyFaults(**NON_DEFAULT))
    status, _, document = call(server.url + "/faults", "PUT", b'{"latency_ms": 7}')
    assert status == 200
    assert proxy.faults == ProxyFaults(latency_ms=7)
    assert document["faults"]["latency_ms"] == 7 and document["faults"]["timeout"] is False
    assert set(document) == {"faults", "active", "stats"}
    assert set(document["stats"]) == {"connections", "active", "bytes_upstream", "bytes_downstream", "resets",
                                      "slowdowns", "requests"}


def test_faults_are_read_from_the_proxy_each_time(proxy: FaultProxy, client: ProxyControlClient) -> None:
    assert client.faults == ProxyFaults()
    proxy.set_faults(ProxyFaults(latency_ms=3))  # changed behind the client's back
    assert client.faults == ProxyFaults(latency_ms=3)
    client.clear()
    assert proxy.faults == ProxyFaults()


def test_stats_count_traffic_through_the_proxy(proxy: FaultProxy, client: ProxyControlClient,
                                               server: ProxyControlServer) -> None:
    assert round_trip(proxy.port, b"x" * 1000)[0] == b"x" * 1000
    deadline = time.monotonic() + 5
    while client.stats().bytes_downstream < 1000 and time.monotonic() < deadline:
        time.sleep(0.02)
    stats = client.stats()
    assert stats.connections == 1 and stats.bytes_upstream == 1000 and stats.bytes_downstream == 1000
    assert call(server.url + "/stats")[2]["bytes_upstream"] == 1000


def test_latency_set_over_http_delays_the_round_trip(proxy: FaultProxy, client: ProxyControlClient) -> None:
    client.set_faults(ProxyFaults(latency_ms=300))  # both ways: a round trip holds >= 600 ms
    echoed, seconds = round_trip(proxy.port)
    assert echoed == b"ping"
    assert seconds >= 0.5
    client.clear()
    assert round_trip(proxy.port)[0] == b"ping"


def test_healthz(server: ProxyControlServer, client: ProxyControlClient) -> None:
    status, headers, document = call(server.url + "/healthz")
    assert (status, headers["Content-Type"], document) == (200, "application/json", {"ok": True})
    assert client.healthy()


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (b'{"latency_ms": 5, "latency": 5}', ["'latency'", "allowed:", "latency_ms"]),
        (b'{"latency_ms": -1}', ["latency_ms", ">= 0"]),
        (b'{"jitter_ms": "1"}', ["jitter_ms"]),
        (b'{"bandwidth_bytes_per_s": 0}', ["bandwidth_bytes_per_s", "> 0"]),
        (b'{"reset_probability": 1.5}', ["reset_probability", "between 0 and 1"]),
        (b'{"direction": "sideways"}', ["direction", "both, upstream, downstream"]),
        (b'{"timeout": 1}', ["timeout", "True or False"]),
        (b'{"seed": 1.5}', ["seed"]),
        (b"{not json", ["not JSON", "latency_ms"]),
        (b"[1, 2]", ["JSON object"]),
        (b"", ["not JSON"]),
    ],
)
def test_a_rejected_body_is_400_naming_the_field(
    body: bytes, names: list[str], proxy: FaultProxy, server: ProxyControlServer
) -> None:
    proxy.set_faults(ProxyFaults(latency_ms=1))
    status, _, document = call(server.url + "/faults", "PUT", body)
    assert status == 400
    assert set(document) == {"error"} and "\n" not in document["error"]
    for name in names:
        assert name in document["error"]
    assert proxy.faults == ProxyFaults(latency_ms=1)  # a rejected PUT changes nothing


def test_the_client_raises_value_error_with_the_servers_message(proxy: FaultProxy, client: ProxyControlClient) -> None:
    # Sidestep local validation, as a proxy of another version might reject what this one accepts.
    bad = replace(ProxyFaults(), latency_ms=1)
    object.__setattr__(bad, "latency_ms", -5)
    with pytest.raises(ValueError, match=r"latency_ms must be a finite number >= 0, got -5"):
        client.set_faults(bad)
    assert proxy.faults == ProxyFaults()
    with pytest.raises(TypeError):
        client.set_faults({"latency_ms": 1})  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ["/", "/fault", "/faults/extra", "/metrics"])
def test_an_unknown_path_is_404(path: str, server: ProxyControlServer) -> None:
    status, _, document = call(server.url + path)
    assert status == 404 and "/faults" in document["error"]


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("POST", "/faults", "GET, PUT, DELETE"),
    ("PATCH", "/faults", "GET, PUT, DELETE"),
    ("PUT", "/stats", "GET"),
    ("DELETE", "/healthz", "GET"),
])
def test_a_wrong_method_is_405(method: str, path: str, allow: str, proxy: FaultProxy,
                               server: ProxyControlServer) -> None:
    status, headers, document = call(server.url + path, method, b"{}" if method in ("POST", "PATCH", "PUT") else None)
    assert status == 405 and headers["Allow"] == allow and method in document["error"]
    assert proxy.faults == ProxyFaults()


def test_the_client_names_an_api_that_does_not_answer() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServiceError) as caught:
        ProxyControlClient(url).stats()
    assert str(caught.value) == (f"the fault proxy's control API at {url} does not answer (connection refused); "
                                 "is the proxy running?")
    assert not ProxyControlClient(url).healthy()


def test_the_client_times_out_on_an_api_that_never_answers() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts (backlog), never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        start = time.monotonic()
        with pytest.raises(ServiceError, match=r"does not answer \(no answer in 0\.3 s\); is the proxy running\?"):
            ProxyControlClient(url, timeout=0.3).faults
        assert time.monotonic() - start < 5


def test_the_client_says_when_something_else_answers(echo_server: TcpServer) -> None:
    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404, "nothing here")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{other.server_address[1]}"
        with pytest.raises(ServiceError, match=r"answered 404 to GET /stats.*is .* its control port\?"):
            ProxyControlClient(url).stats()
    finally:
        other.shutdown()
        other.server_close()


class BrokenProxy:
    """A ProxyControl whose clear fails."""

    faults = ProxyFaults(latency_ms=1)

    def set_faults(self, faults: ProxyFaults) -> None:
        self.faults = faults

    def clear(self) -> None:
        raise RuntimeError("the delay line is stuck")

    def stats(self) -> ProxyStats:
        return ProxyStats(connections=0, active=0, bytes_upstream=0, bytes_downstream=0, resets=0, slowdowns=0,
                          requests=0)


def test_a_failing_proxy_answers_500_and_is_not_taken_for_gone(undo: UndoLog) -> None:
    with ProxyControlServer(BrokenProxy()) as broken:
        status, _, document = call(broken.url + "/faults", "DELETE")
        assert status == 500 and document == {"error": "RuntimeError: the delay line is stuck"}
        with pytest.raises(ServiceError, match="answered 500 to DELETE /faults: RuntimeError") as caught:
            ProxyControlClient(broken.url).clear()
        assert not isinstance(caught.value, ProxyUnreachableError)
        record = add_proxy_faults_record(undo, broken.url)
        with pytest.raises(HarnessError, match="run heal again once it answers"):
            heal(undo)
        assert undo.pending() == [record]


def test_bad_client_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="http://host:port"):
        ProxyControlClient("127.0.0.1:8081")
    with pytest.raises(ValueError, match="timeout"):
        ProxyControlClient("http://127.0.0.1:8081", timeout=0)


def test_server_stop_frees_the_port_and_is_idempotent(proxy: FaultProxy) -> None:
    server = ProxyControlServer(proxy)
    with pytest.raises(ServiceError, match="not running"):
        server.url
    server.start()
    port = server.port
    assert ProxyControlClient(server.url).healthy()
    server.stop()
    server.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_a_busy_port_is_a_service_error(proxy: FaultProxy, server: ProxyControlServer) -> None:
    with pytest.raises(ServiceError, match=f"cannot listen on 127.0.0.1:{server.port}"):
        ProxyControlServer(proxy, port=server.port).start()


# -- python -m harness.services.proxy ---------------------------------------------------


@contextlib.contextmanager
def standalone(upstream_port: int) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    """The standalone proxy in a subprocess: (process, data URL, control URL)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.services.proxy", "--listen", "127.0.0.1:0",
         "--upstream", f"127.0.0.1:{upstream_port}", "--control", "127.0.0.1:0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()),  # type: ignore[union-attr]
                                  daemon=True)
        reader.start()
        reader.join(20)
        assert lines, "the standalone proxy printed nothing within 20 s"
        match = re.fullmatch(r"fault proxy: data (http://\S+) -> upstream \S+; control (http://\S+)\n", lines[0])
        assert match, f"unexpected first line {lines[0]!r}"
        yield process, match[1], match[2]
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_the_standalone_proxy_serves_and_stops_on_sigterm(echo_server: TcpServer) -> None:
    with standalone(echo_server.port) as (process, data_url, control_url):
        client = ProxyControlClient(control_url)
        assert client.healthy()
        client.set_faults(ProxyFaults(latency_ms=200, direction="upstream"))
        assert client.faults == ProxyFaults(latency_ms=200, direction="upstream")
        echoed, seconds = round_trip(port_of(data_url))
        assert echoed == b"ping" and seconds >= 0.15
        assert client.stats().connections == 1

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
        out, err = process.communicate(timeout=5)
        assert "stopped (SIGTERM)" in out and err == ""
    for url in (data_url, control_url):  # nothing listens there any more, and the port can be bound again
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port_of(url)), timeout=2).close()
        socket.create_server(("127.0.0.1", port_of(url))).close()


def test_the_standalone_proxy_exits_0_on_sigint(echo_server: TcpServer) -> None:
    with standalone(echo_server.port) as (process, _, control_url):
        assert ProxyControlClient(control_url).healthy()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=5) == 0


@pytest.mark.parametrize("args", [
    ["--upstream", "nohostport"],
    ["--upstream", "127.0.0.1:0"],
    ["--upstream", "127.0.0.1:9000", "--listen", "127.0.0.1:99999"],
    ["--upstream", "127.0.0.1:9000", "--control", "localhost"],
    [],
])
def test_bad_arguments_are_a_usage_error(args: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", "harness.services.proxy", *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and result.stdout == ""
    last = result.stderr.splitlines()[-1]
    assert last.startswith("python -m harness.services.proxy: error: ") and "--" in last
    assert "Traceback" not in result.stderr


def test_a_busy_control_port_is_one_line_and_exit_1(echo_server: TcpServer) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        result = subprocess.run(
            [sys.executable, "-m", "harness.services.proxy", "--listen", "127.0.0.1:0",
             "--upstream", f"127.0.0.1:{echo_server.port}", "--control", f"127.0.0.1:{busy.getsockname()[1]}"],
            cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "cannot listen on" in result.stderr


# -- the proxy-faults undo record --------------------------------------------------------


def test_heal_clears_the_faults_of_a_running_proxy(undo: UndoLog, proxy: FaultProxy,
                                                   server: ProxyControlServer) -> None:
    record = add_proxy_faults_record(undo, server.url)
    assert record.kind == KIND and undo.pending() == [record]
    proxy.set_faults(ProxyFaults(latency_ms=100, slowdown_probability=0.5))
    done = heal(undo)
    assert done == [f"cleared the faults of the fault proxy at {server.url}"]
    assert proxy.faults == ProxyFaults()
    assert undo.pending() == []


def test_heal_when_the_proxy_is_gone_succeeds(undo: UndoLog) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    add_proxy_faults_record(undo, url)
    (line,) = heal(undo)
    assert f"the fault proxy at {url} is gone" in line
    assert undo.pending() == []


def test_heal_keeps_the_record_when_something_else_answers(undo: UndoLog) -> None:
    class Broken(http.server.BaseHTTPRequestHandler):
        def do_DELETE(self) -> None:
            self.send_error(500, "boom")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Broken)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        record = add_proxy_faults_record(undo, f"http://127.0.0.1:{other.server_address[1]}")
        with pytest.raises(HarnessError, match="answered 500"):
            heal(undo)
        assert undo.pending() == [record]
    finally:
        other.shutdown()
        other.server_close()


def _recorder(proxy: ProxyControl, collector: Collector, undo: UndoLog) -> FaultRecorder:
    return FaultRecorder(sink=collector, experiment="proxy", context=FaultContext(
        cluster=cast(Cluster, None), seed=7, proxies={"s3": proxy}, undo=undo))


def test_inject_over_http_records_until_healed(undo: UndoLog, proxy: FaultProxy, client: ProxyControlClient,
                                               collector: Collector) -> None:
    faults = _recorder(client, collector, undo)
    active = faults.inject(proxy_faults.NETWORK_DELAY, proxy_faults.NetworkDelayParams(latency_ms=50, jitter_ms=0))
    assert proxy.faults == ProxyFaults(latency_ms=50, seed=active.seed)
    (record,) = undo.pending()
    assert record.kind == KIND and record.extra["control_url"] == client.url and active.undo_record == record.id
    faults.heal()
    assert proxy.faults == ProxyFaults() and undo.pending() == []
    assert len(collector.of(FaultHealed)) == 1


def test_inject_in_process_writes_no_record(undo: UndoLog, proxy: FaultProxy, collector: Collector) -> None:
    faults = _recorder(proxy, collector, undo)
    faults.inject(proxy_faults.NETWORK_DELAY, proxy_faults.NetworkDelayParams(latency_ms=50, jitter_ms=0))
    assert undo.pending() == []
    faults.heal()
    assert proxy.faults == ProxyFaults()


def test_a_harness_killed_mid_fault_leaves_no_fault_after_heal(tmp_path: Path, proxy: FaultProxy,
                                                                server: ProxyControlServer) -> None:
    """SIGKILL a harness while a standalone proxy delays traffic: the faults outlive it; heal clears them."""
    undo_dir = tmp_path / "undo"
    child = textwrap.dedent(f"""
        import sys, time
        from harness.faults.proxy_faults import NETWORK_DELAY, NetworkDelayParams
        from harness.faults.recorder import FaultRecorder
        from harness.faults.role import FaultContext
        from harness.services.proxy import ProxyControlClient
        from harness.undo import UndoLog
        context = FaultContext(cluster=None, seed=7, proxies={{"s3": ProxyControlClient({server.url!r})}},
                               undo=UndoLog({str(undo_dir)!r}))
        FaultRecorder(sink=lambda event: None, context=context, experiment="killed").inject(
            NETWORK_DELAY, NetworkDelayParams(latency_ms=250, jitter_ms=0))
        print("injected", flush=True)
        time.sleep(60)
    """)
    process = subprocess.Popen([sys.executable, "-c", child], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "HARNESS_STATE_DIR": str(tmp_path / "state")})
    try:
        assert process.stdout is not None and process.stdout.readline() == "injected\n"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
    assert proxy.faults.latency_ms == 250  # the harness is gone, its fault is not
    undo = UndoLog(undo_dir)
    assert [r.kind for r in undo.pending()] == [KIND]
    assert heal(undo) == [f"cleared the faults of the fault proxy at {server.url}"]
    assert proxy.faults == ProxyFaults() and undo.pending() == []
