"""Network delay and storage throttling, through the fault proxy in front of a dependency.

Both set the proxy's faults for new and open connections alike; heal clears
them. The proxy is a :class:`ProxyControl`: a ``FaultProxy`` in the harness's
process, which a killed harness takes down with its faults, or a standalone one
(``python -m harness.services.proxy``, a Deployment in front of MinIO) driven
over HTTP by a ``ProxyControlClient``, which keeps its faults when the harness
is killed: for that one the fault has a ``proxy-faults`` undo record, so that
``mlchaos heal`` clears faults a killed run left behind. The proxy's random draws
(jitter, which requests get ``503 SlowDown``, which connections are reset) are
seeded with the fault's seed. One proxy fault per link (group ``proxy:<target>``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import Protocol

from harness.faults.role import FaultContext, FaultNotCleared, Heal, Target
from harness.services.proxy import ProxyControlClient, ProxyFaults
from harness.services.proxy.undo_kind import add_proxy_faults_record

__all__ = [
    "NETWORK_DELAY",
    "NetworkDelayParams",
    "ProxyFault",
    "STORAGE_THROTTLE",
    "StorageThrottleParams",
    "describe",
]


@dataclass(frozen=True, kw_only=True)
class NetworkDelayParams:
    """Delay every byte to and from ``target`` by ``latency_ms`` +/- ``jitter_ms``."""

    latency_ms: float = 200.0
    jitter_ms: float = 50.0
    target: str = "s3"

    def __post_init__(self) -> None:
        self.faults()  # ValueError on bad values, before anything acts

    def faults(self) -> ProxyFaults:
        return ProxyFaults(latency_ms=self.latency_ms, jitter_ms=self.jitter_ms)


@dataclass(frozen=True, kw_only=True)
class StorageThrottleParams:
    """Cap the bandwidth to ``target`` (None: uncapped) and answer ``slowdown_share`` of its requests
    with ``503 SlowDown``."""

    bandwidth_bytes_per_s: float | None = 1048576.0
    slowdown_share: float = 0.2
    target: str = "s3"

    def __post_init__(self) -> None:
        self.faults()

    def faults(self) -> ProxyFaults:
        return ProxyFaults(bandwidth_bytes_per_s=self.bandwidth_bytes_per_s, slowdown_probability=self.slowdown_share)


class ProxyParams(Protocol):
    @property
    def target(self) -> str: ...

    def faults(self) -> ProxyFaults: ...


class ProxyFault:
    """A fault the proxy in front of ``params.target`` applies, seeded with the fault's seed."""

    def __init__(self, name: str) -> None:
        self.name = name

    def plan(self, ctx: FaultContext, params: ProxyParams) -> Target:
        proxy = ctx.proxy(params.target)
        refusal = ""
        if proxy.faults != ProxyFaults():
            refusal = f"the {params.target} proxy already has a fault active; heal it before injecting {self.name}"
        # Only a proxy in another process outlives a killed harness, faults and all.
        client = proxy if isinstance(proxy, ProxyControlClient) else None
        undo = partial(add_proxy_faults_record, control_url=client.url) if client is not None else None
        return Target(name=params.target, detail=describe(params.faults()), excludes=(f"proxy:{params.target}",),
                      undo=undo, refusal=refusal)

    def inject(self, ctx: FaultContext, params: ProxyParams, target: Target) -> Heal:
        proxy = ctx.proxy(params.target)
        try:
            proxy.set_faults(replace(params.faults(), seed=ctx.seed))
        except Exception as exc:
            try:
                proxy.clear()
            except Exception as clear_error:
                raise FaultNotCleared(f"{self.name} on {target.name} failed ({exc}) and clearing the proxy failed "
                                      f"too ({clear_error}); run `mlchaos heal` once it answers") from exc
            raise

        def heal() -> str:
            stats = proxy.stats()
            proxy.clear()
            return (f"cleared; {stats.requests} requests seen, {stats.slowdowns} answered 503 SlowDown, "
                    f"{stats.resets} connections reset")

        return heal


NETWORK_DELAY = ProxyFault("network-delay")
STORAGE_THROTTLE = ProxyFault("storage-throttle")


def describe(f: ProxyFaults) -> str:
    """What ``f`` does to traffic, in words."""
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
