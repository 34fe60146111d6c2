"""Chaos Toolkit actions on the network path to a dependency: wrappers over :mod:`harness.faults.proxy_faults`."""

from __future__ import annotations

from harness import runtime
from harness.faults.proxy_faults import NETWORK_DELAY, NetworkDelayParams

__all__ = ["add_latency"]


def add_latency(latency_ms: float = 200.0, jitter_ms: float = 50.0, target: str = "s3") -> str:
    """Delay every byte between the pipeline and ``target`` by ``latency_ms`` +/- ``jitter_ms``
    (drawn from the fault's seed), each way, until healed (``harness.chaosext.faults.actions.heal_faults``)
    or the experiment ends. Returns the fault id."""
    params = NetworkDelayParams(latency_ms=latency_ms, jitter_ms=jitter_ms, target=target)
    return runtime.current().faults.inject(NETWORK_DELAY, params).fault_id
