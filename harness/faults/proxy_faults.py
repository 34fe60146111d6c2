"""Network delay and storage throttling, through the fault proxy in front of a dependency.

Both set the proxy's faults for new and open connections alike; heal clears
them. The proxy lives in the harness process, so a killed harness takes its
faults with it: there is nothing for ``heal`` to undo afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from harness.cluster.base import EventSink
from harness.errors import HarnessError
from harness.history.events import FaultHealed, FaultInjected
from harness.services.proxy import FaultProxy, ProxyFaults

NETWORK_DELAY = "network-delay"
STORAGE_THROTTLE = "storage-throttle"


def inject(
    *, proxy: FaultProxy, faults: ProxyFaults, sink: EventSink, fault: str, fault_id: str, target: str
) -> Callable[[], None]:
    """Apply ``faults`` on ``proxy``; returns the idempotent heal. One proxy fault at a time."""
    if proxy.faults != ProxyFaults():
        raise HarnessError(f"the {target} proxy already has a fault active; heal it before injecting {fault}")
    sink(FaultInjected(ts=time.time(), fault=fault, fault_id=fault_id, target=target, detail=describe(faults)))
    proxy.set_faults(faults)
    healed = False

    def heal() -> None:
        nonlocal healed
        if healed:
            return
        healed = True
        stats = proxy.stats()
        proxy.clear()
        sink(FaultHealed(ts=time.time(), fault=fault, fault_id=fault_id,
                         detail=f"cleared; {stats.requests} requests seen, {stats.slowdowns} answered 503 SlowDown, "
                                f"{stats.resets} connections reset"))

    return heal


def describe(f: ProxyFaults) -> str:
    parts = []
    if f.latency_ms or f.jitter_ms:
        parts.append(f"latency {f.latency_ms:g} ms +/- {f.jitter_ms:g} ms ({f.direction})")
    if f.bandwidth_bytes_per_s:
        parts.append(f"bandwidth capped at {f.bandwidth_bytes_per_s / 2**20:.2f} MiB/s")
    if f.slowdown_probability:
        parts.append(f"{100 * f.slowdown_probability:g} % of requests answered 503 SlowDown")
    if f.reset_probability:
        parts.append(f"{100 * f.reset_probability:g} % of connections reset")
    if f.timeout:
        parts.append("black hole (nothing forwarded)")
    return "; ".join(parts) or "no fault"
