"""Network delay and storage throttling on the fault proxy: set, recorded, healed completely."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.faults import proxy_faults
from harness.history.events import FaultHealed, FaultInjected
from harness.services.proxy import FaultProxy, ProxyFaults
from harness.undo import UndoLog, heal

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def proxy():
    with socket.socket() as upstream:
        upstream.bind(("127.0.0.1", 0))
        upstream.listen()
        with FaultProxy(upstream_host="127.0.0.1", upstream_port=upstream.getsockname()[1]) as p:
            yield p


def test_inject_records_what_it_did_and_heal_clears_once(proxy, collector):
    faults = ProxyFaults(latency_ms=200, jitter_ms=50)
    heal_fault = proxy_faults.inject(proxy=proxy, faults=faults, sink=collector, fault="network-delay",
                                     fault_id="network-delay-1", target="s3")
    assert proxy.faults == faults
    (injected,) = collector.of(FaultInjected)
    assert injected.detail == "latency 200 ms +/- 50 ms (both)" and injected.target == "s3"
    heal_fault()
    heal_fault()  # healing twice is harmless
    assert proxy.faults == ProxyFaults()
    assert len(collector.of(FaultHealed)) == 1


def test_a_second_fault_on_a_busy_proxy_is_refused(proxy, collector):
    proxy_faults.inject(proxy=proxy, faults=ProxyFaults(bandwidth_bytes_per_s=2**20, slowdown_probability=0.2),
                        sink=collector, fault="storage-throttle", fault_id="storage-throttle-1", target="s3")
    with pytest.raises(HarnessError, match="already has a fault active"):
        proxy_faults.inject(proxy=proxy, faults=ProxyFaults(latency_ms=1), sink=collector, fault="network-delay",
                            fault_id="network-delay-2", target="s3")
    assert "1.00 MiB/s" in collector.of(FaultInjected)[0].detail


def test_a_harness_killed_mid_fault_leaves_nothing_after_heal(tmp_path):
    """SIGKILL a harness while S3 traffic is delayed: the proxy dies with it; heal stops the rest."""
    state = tmp_path / "state"
    child = textwrap.dedent("""
        import sys, time
        from harness.environment import embedded_environment
        from harness.services.proxy import ProxyFaults
        with embedded_environment() as env:
            env.proxy("s3").set_faults(ProxyFaults(latency_ms=200))
            print(env.proxies["s3"].port, env.s3_direct_url, flush=True)
            time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "HARNESS_STATE_DIR": str(state)})
    try:
        line = proc.stdout.readline()
        assert line, "the child harness did not start"
        proxy_port = int(line.split()[0])
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        healed = heal(UndoLog(state / "undo"))
        assert any("moto" in h for h in healed) and any("Prometheus" in h for h in healed)
        assert UndoLog(state / "undo").pending() == []
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", proxy_port), timeout=1).close()
        assert heal(UndoLog(state / "undo")) == []  # a second heal finds nothing
    finally:
        if proc.poll() is None:
            proc.kill()
