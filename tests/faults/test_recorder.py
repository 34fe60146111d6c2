"""The fault recorder and the Fault protocol, on stand-in faults (no cluster) and a real fault proxy."""

from __future__ import annotations

import http.client
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from harness.cluster.base import Cluster
from harness.errors import HarnessError
from harness.faults.proxy_faults import NETWORK_DELAY, STORAGE_THROTTLE, NetworkDelayParams, StorageThrottleParams
from harness.faults.recorder import FaultRecorder
from harness.faults.role import FaultContext, FaultNotCleared, Heal, Target, derive_seed
from harness.history.events import Event, FaultHealed, FaultInjected
from harness.services.proxy import FaultProxy, ProxyFaults
from harness.undo import UndoLog, UndoRecord


class StandIn:
    """A fault that logs what happened to it and checks what the recorder did before it acted."""

    name = "stand-in"

    def __init__(self, log: list[str], events: list[Event], undo: UndoLog | None = None) -> None:
        self.log = log
        self.events = events
        self.undo = undo

    def plan(self, ctx: FaultContext, params: str) -> Target:
        self.log.append(f"plan {params}")

        def record(log: UndoLog) -> UndoRecord:
            return log.add(kind="stand-in", description=f"stand-in on {params}")

        return Target(name=params, detail=f"hit {params}", excludes=(f"thing:{params}",), undo=record)

    def inject(self, ctx: FaultContext, params: str, target: Target) -> Heal:
        # The recorder wrote the undo record and the injected event before the fault acts.
        assert any(isinstance(e, FaultInjected) and e.target == params for e in self.events)
        if self.undo is not None:
            assert [r.description for r in self.undo.pending()] == [f"stand-in on {params}"]
        if params == "fragile":
            raise RuntimeError("could not act")
        if params == "stuck":
            raise FaultNotCleared("acted halfway and could not undo it")
        self.log.append(f"inject {params} seed {ctx.seed}")

        def heal() -> str:
            self.log.append(f"heal {params}")
            return f"undid {params}"

        return heal


def recorder(events: list[Event], *, seed: int = 7, **context: Any) -> FaultRecorder:
    ctx = FaultContext(cluster=cast(Cluster, None), seed=seed, **context)
    return FaultRecorder(sink=events.append, context=ctx, experiment="exp")


def of(events: list[Event], kind: type[Event]) -> list[Event]:
    return [e for e in events if isinstance(e, kind)]


def test_each_fault_is_recorded_once_injected_and_once_healed() -> None:
    events: list[Event] = []
    log: list[str] = []
    faults = recorder(events)
    active = faults.inject(StandIn(log, events), "a")
    assert [a.fault_id for a in faults.active()] == ["stand-in-1"]
    assert faults.heal(active.fault_id) == ["stand-in-1"]
    assert faults.heal(active.fault_id) == [] and faults.heal() == []  # healing twice is harmless
    (injected,) = of(events, FaultInjected)
    (healed,) = of(events, FaultHealed)
    assert isinstance(injected, FaultInjected) and isinstance(healed, FaultHealed)
    assert injected.fault_id == healed.fault_id == "stand-in-1" and healed.detail == "undid a"
    assert injected.detail == f"hit a; seed {active.seed} (chaos seed 7)"  # enough to replay the run
    assert log == ["plan a", f"inject a seed {active.seed}", "heal a"]


def test_a_fault_in_an_active_faults_exclusion_group_is_refused_before_it_acts() -> None:
    events: list[Event] = []
    log: list[str] = []
    faults = recorder(events)
    first = faults.inject(StandIn(log, events), "node-a")
    with pytest.raises(HarnessError, match=r"stand-in on node-a \(stand-in-2\) conflicts with active fault "
                                           r"stand-in-1 \(stand-in on node-a\), which holds thing:node-a"):
        faults.inject(StandIn(log, events), "node-a")
    assert [line for line in log if line.startswith("inject")] == [f"inject node-a seed {first.seed}"]
    assert len(of(events, FaultInjected)) == 1  # the refused fault is not recorded
    faults.inject(StandIn(log, events), "node-b")  # another group is fine
    faults.heal(first.fault_id)
    faults.inject(StandIn(log, events), "node-a")  # and the group is free again once healed
    assert [a.target.name for a in faults.active()] == ["node-b", "node-a"]


def test_the_undo_record_is_written_before_acting_and_removed_after_heal(tmp_path: Path) -> None:
    events: list[Event] = []
    undo = UndoLog(tmp_path / "undo")
    faults = recorder(events, undo=undo)
    active = faults.inject(StandIn([], events, undo), "a")  # the stand-in asserts the record exists as it acts
    assert [r.id for r in undo.pending()] == [active.undo_record]
    faults.heal()
    assert undo.pending() == []


def test_a_failed_injection_is_recorded_healed_and_leaves_nothing_behind(tmp_path: Path) -> None:
    events: list[Event] = []
    undo = UndoLog(tmp_path / "undo")
    faults = recorder(events, undo=undo)
    with pytest.raises(RuntimeError, match="could not act"):
        faults.inject(StandIn([], events, undo), "fragile")
    assert faults.active() == [] and undo.pending() == []
    (healed,) = of(events, FaultHealed)
    assert isinstance(healed, FaultHealed) and "injection failed" in healed.detail


def test_a_fault_that_could_not_clean_up_keeps_its_undo_record_for_heal(tmp_path: Path) -> None:
    events: list[Event] = []
    undo = UndoLog(tmp_path / "undo")
    faults = recorder(events, undo=undo)
    with pytest.raises(FaultNotCleared):
        faults.inject(StandIn([], events, undo), "stuck")
    assert [r.description for r in undo.pending()] == ["stand-in on stuck"]
    assert of(events, FaultHealed) == [] and faults.active() == []


def test_a_failed_heal_keeps_the_fault_active_and_the_others_are_healed() -> None:
    events: list[Event] = []
    faults = recorder(events)
    calls: list[int] = []

    class Flaky(StandIn):
        def inject(self, ctx: FaultContext, params: str, target: Target) -> Heal:
            def heal() -> str:
                calls.append(1)
                if len(calls) == 1:
                    raise OSError("node API down")
                return "healed at last"
            return heal

    flaky = faults.inject(Flaky([], events), "x")
    faults.inject(StandIn([], events), "y")
    with pytest.raises(HarnessError, match=r"could not heal stand-in-1 \(OSError: node API down\)"):
        faults.heal()
    assert [a.fault_id for a in faults.active()] == [flaky.fault_id]
    assert faults.heal() == [flaky.fault_id]
    assert [e.fault_id for e in of(events, FaultHealed) if isinstance(e, FaultHealed)] == ["stand-in-2", "stand-in-1"]


def test_fault_seeds_derive_from_the_chaos_seed_the_experiment_and_the_fault() -> None:
    assert derive_seed(7, "exp", "network-delay-1") == derive_seed(7, "exp", "network-delay-1")
    assert len({derive_seed(7, "exp", "network-delay-1"), derive_seed(8, "exp", "network-delay-1"),
                derive_seed(7, "other", "network-delay-1"), derive_seed(7, "exp", "network-delay-2")}) == 4


@pytest.fixture
def upstream() -> Iterator[int]:
    class Ok(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def proxy_draws(upstream: int, *, chaos_seed: int) -> tuple[list[int], list[float]]:
    """What a run with ``chaos_seed`` draws from its faults: the statuses of 40 requests through a proxy
    where a storage-throttle fault answers half with 503 SlowDown, then the first 20 jitter delays a
    network-delay fault draws (latency 200 +/- 50 ms)."""
    with FaultProxy(upstream_host="127.0.0.1", upstream_port=upstream) as proxy:
        faults = recorder([], seed=chaos_seed, proxies={"s3": proxy})
        throttle = faults.inject(STORAGE_THROTTLE, StorageThrottleParams(bandwidth_bytes_per_s=None,
                                                                          slowdown_share=0.5))
        assert proxy.faults == ProxyFaults(slowdown_probability=0.5, seed=throttle.seed)
        host, port = proxy.address
        statuses = []
        for _ in range(40):
            connection = http.client.HTTPConnection(host, port, timeout=10)  # a 503 closes its connection
            connection.request("GET", "/bucket/key")
            response = connection.getresponse()
            response.read()
            statuses.append(response.status)
            connection.close()
        faults.heal()
        delay = faults.inject(NETWORK_DELAY, NetworkDelayParams(latency_ms=200, jitter_ms=50))
        assert proxy.faults == ProxyFaults(latency_ms=200, jitter_ms=50, seed=delay.seed)
        jitter = [proxy._uniform(150.0, 250.0) for _ in range(20)]  # the draw each held chunk gets
        faults.heal()
        assert proxy.faults == ProxyFaults()
    return statuses, jitter


def test_replaying_a_run_with_the_same_chaos_seed_draws_the_same_proxy_faults(upstream: int) -> None:
    statuses, jitter = proxy_draws(upstream, chaos_seed=7)
    assert set(statuses) == {200, 503}
    assert proxy_draws(upstream, chaos_seed=7) == (statuses, jitter)
    other_statuses, other_jitter = proxy_draws(upstream, chaos_seed=8)
    assert other_statuses != statuses and other_jitter != jitter
