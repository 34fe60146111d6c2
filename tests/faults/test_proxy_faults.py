"""Network delay and storage throttling on the fault proxy: set, recorded, healed completely."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from harness.cluster.base import Cluster
from harness.errors import HarnessError
from harness.faults.proxy_faults import NETWORK_DELAY, STORAGE_THROTTLE, NetworkDelayParams, StorageThrottleParams
from harness.faults.recorder import FaultRecorder
from harness.faults.role import FaultContext
from harness.history.events import FaultHealed, FaultInjected
from harness.services.proxy import FaultProxy, ProxyFaults
from harness.undo import UndoLog, heal
from tests.cluster.conftest import Collector

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    with socket.socket() as upstream:
        upstream.bind(("127.0.0.1", 0))
        upstream.listen()
        with FaultProxy(upstream_host="127.0.0.1", upstream_port=upstream.getsockname()[1]) as p:
            yield p


def _recorder(proxy: FaultProxy, collector: Collector, undo: UndoLog | None = None) -> FaultRecorder:
    return FaultRecorder(sink=collector, experiment="proxy", context=FaultContext(
        cluster=cast(Cluster, None), seed=7, proxies={"s3": proxy}, undo=undo))


def test_inject_records_what_it_did_and_heal_clears_once(proxy: FaultProxy, collector: Collector,
                                                         undo: UndoLog) -> None:
    faults = _recorder(proxy, collector, undo)
    active = faults.inject(NETWORK_DELAY, NetworkDelayParams(latency_ms=200, jitter_ms=50))
    assert proxy.faults == ProxyFaults(latency_ms=200, jitter_ms=50, seed=active.seed)
    assert active.undo_record is None and undo.pending() == []  # a proxy in process dies with the harness
    (injected,) = collector.of(FaultInjected)
    assert isinstance(injected, FaultInjected)
    assert injected.detail == f"latency 200 ms +/- 50 ms (both); seed {active.seed} (chaos seed 7)"
    assert injected.target == "s3" and injected.fault == "network-delay"
    assert faults.heal() == [active.fault_id]
    assert faults.heal() == []  # healing twice is harmless
    assert proxy.faults == ProxyFaults()
    assert len(collector.of(FaultHealed)) == 1


def test_a_second_fault_on_one_link_is_refused(proxy: FaultProxy, collector: Collector) -> None:
    faults = _recorder(proxy, collector)
    throttle = faults.inject(STORAGE_THROTTLE, StorageThrottleParams(bandwidth_bytes_per_s=2**20,
                                                                      slowdown_share=0.2))
    with pytest.raises(HarnessError, match=f"conflicts with active fault {throttle.fault_id} "
                                           r"\(storage-throttle on s3\), which holds proxy:s3"):
        faults.inject(NETWORK_DELAY, NetworkDelayParams(latency_ms=1, jitter_ms=0))
    (injected,) = collector.of(FaultInjected)
    assert isinstance(injected, FaultInjected) and "1.00 MiB/s" in injected.detail
    assert proxy.faults.slowdown_probability == 0.2  # the refused fault changed nothing


def test_a_proxy_with_faults_set_elsewhere_is_refused(proxy: FaultProxy, collector: Collector) -> None:
    proxy.set_faults(ProxyFaults(latency_ms=5))
    with pytest.raises(HarnessError, match="already has a fault active"):
        _recorder(proxy, collector).inject(NETWORK_DELAY, NetworkDelayParams())
    assert collector.events == []


def test_bad_parameters_are_refused_before_anything_acts() -> None:
    with pytest.raises(ValueError, match="slowdown_probability"):
        StorageThrottleParams(slowdown_share=1.5)
    with pytest.raises(ValueError, match="latency_ms"):
        NetworkDelayParams(latency_ms=-1)


def test_a_harness_killed_mid_fault_leaves_nothing_after_heal(tmp_path: Path) -> None:
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
        assert proc.stdout is not None
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
