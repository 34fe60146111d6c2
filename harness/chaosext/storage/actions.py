"""Chaos Toolkit actions on the object store: wrappers over :mod:`harness.faults.proxy_faults`."""

from __future__ import annotations

from harness import runtime
from harness.faults.proxy_faults import STORAGE_THROTTLE, StorageThrottleParams

__all__ = ["throttle_storage"]


def throttle_storage(
    bandwidth_bytes_per_s: float = 1048576.0, slowdown_share: float = 0.2, target: str = "s3"
) -> str:
    """Cap the bandwidth to ``target`` (shared by every connection, like one throttled link) and
    answer ``slowdown_share`` of its requests with ``503 SlowDown`` (which ones is drawn from the
    fault's seed), until healed or the experiment ends. Returns the fault id."""
    params = StorageThrottleParams(bandwidth_bytes_per_s=bandwidth_bytes_per_s, slowdown_share=slowdown_share,
                                   target=target)
    return runtime.current().faults.inject(STORAGE_THROTTLE, params).fault_id
