"""Chaos Toolkit actions on the object store, through its fault proxy."""

from __future__ import annotations

from harness import runtime
from harness.faults import proxy_faults
from harness.services.proxy import ProxyFaults
from harness.undo import default_undo_log

__all__ = ["throttle_storage"]


def throttle_storage(
    bandwidth_bytes_per_s: float = 1048576.0, slowdown_share: float = 0.2, target: str = "s3"
) -> str:
    """Cap the bandwidth to ``target`` (shared by every connection, like one throttled link) and
    answer ``slowdown_share`` of its requests with ``503 SlowDown``, until healed or the experiment
    ends. Returns the fault id."""
    exp = runtime.current()
    fault_id = exp.next_fault_id(proxy_faults.STORAGE_THROTTLE)
    faults = ProxyFaults(bandwidth_bytes_per_s=bandwidth_bytes_per_s, slowdown_probability=slowdown_share)
    heal = proxy_faults.inject(
        proxy=exp.env.proxy(target), faults=faults, sink=exp.history.append,
        fault=proxy_faults.STORAGE_THROTTLE, fault_id=fault_id, target=target, undo=default_undo_log(),
    )
    exp.on_heal(fault_id, heal)
    return fault_id
