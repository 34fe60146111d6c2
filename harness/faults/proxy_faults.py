"""Network delay and storage throttling, through the fault proxy in front of a dependency.

Both set the proxy's faults for new and open connections alike; heal clears
them. The proxy is a :class:`ProxyControl`: a ``FaultProxy`` in the harness's
process, which a killed harness takes down with its faults, or a standalone one
(``python -m harness.services.proxy``, a Deployment in front of MinIO) driven
over HTTP by a ``ProxyControlClient``, which keeps its faults when the harness
is killed. For that one, given an ``undo`` log, :func:`inject` writes a
``proxy-faults`` record before setting the faults and removes it once they are
cleared, so that ``mlchaos heal`` clears faults a killed run left behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from harness.cluster.base import EventSink
from harness.errors import HarnessError
from harness.history.events import FaultHealed, FaultInjected
from harness.services.proxy import ProxyControl, ProxyControlClient, ProxyFaults
from harness.services.proxy.undo_kind import add_proxy_faults_record
from harness.undo import UndoLog

NETWORK_DELAY = "network-delay"
STORAGE_THROTTLE = "storage-throttle"


def inject(
    *, proxy: ProxyControl, faults: ProxyFaults, sink: EventSink, fault: str, fault_id: str, target: str,
    undo: UndoLog | None = None,
) -> Callable[[], None]:
    """Apply ``faults`` on ``proxy``; returns the idempotent heal. One proxy fault at a time.

    With ``undo`` and a proxy out of process (a ProxyControlClient), a ``proxy-faults``
    record is written before the faults are set and removed once heal has cleared them
    (or at once if the proxy rejects the faults: nothing was set)."""
    if proxy.faults != ProxyFaults():
        raise HarnessError(f"the {target} proxy already has a fault active; heal it before injecting {fault}")
    record = None
    if undo is not None and isinstance(proxy, ProxyControlClient):
        record = add_proxy_faults_record(undo, proxy.url)
    sink(FaultInjected(ts=time.time(), fault=fault, fault_id=fault_id, target=target, detail=describe(faults)))
    try:
        proxy.set_faults(faults)
    except ValueError:
        if record is not None and undo is not None:
            undo.remove(record.id)
        raise
    healed = False

    def heal() -> None:
        nonlocal healed
        if healed:
            return
        healed = True
        stats = proxy.stats()
        proxy.clear()
        if record is not None and undo is not None:
            undo.remove(record.id)
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
