"""Chaos Toolkit actions on the network path to a dependency, through its fault proxy."""

from __future__ import annotations

from harness import runtime
from harness.faults import proxy_faults
from harness.services.proxy import ProxyFaults
from harness.undo import default_undo_log

__all__ = ["add_latency"]


def add_latency(latency_ms: float = 200.0, jitter_ms: float = 50.0, target: str = "s3") -> str:
    """Delay every byte between the pipeline and ``target`` by ``latency_ms`` +/- ``jitter_ms``,
    each way, until healed (``harness.chaosext.faults.actions.heal_faults``) or the experiment ends.
    Returns the fault id."""
    exp = runtime.current()
    fault_id = exp.next_fault_id(proxy_faults.NETWORK_DELAY)
    heal = proxy_faults.inject(
        proxy=exp.env.proxy(target), faults=ProxyFaults(latency_ms=latency_ms, jitter_ms=jitter_ms),
        sink=exp.history.append, fault=proxy_faults.NETWORK_DELAY, fault_id=fault_id, target=target,
        undo=default_undo_log(),
    )
    exp.on_heal(fault_id, heal)
    return fault_id
