"""GPU capacity arithmetic: idle GPUs per node, stranded capacity, and a fragmenting fill.

Pure functions over plain records, shared by the GPU sampler (which reads them from
the Kubernetes API), the gpu-fragmentation fault (which plans its filler pods with
them) and the gpu-schedulable check (which parses the sampler's events back).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "GPU_RESOURCE",
    "GpuNode",
    "GpuPod",
    "fragmenting_fill",
    "format_counts",
    "idle_per_node",
    "parse_counts",
    "stranded",
]

GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True, kw_only=True)
class GpuNode:
    """A node's allocatable GPUs; ``usable`` is False when it is cordoned or not Ready."""

    name: str
    allocatable: int
    usable: bool = True


@dataclass(frozen=True, kw_only=True)
class GpuPod:
    """A pod that has not finished. ``node`` "" while unscheduled; ``gpus`` its container GPU limits."""

    name: str
    gpus: int
    node: str = ""


def idle_per_node(nodes: Sequence[GpuNode], pods: Sequence[GpuPod]) -> dict[str, int]:
    """Idle GPUs of every usable node with GPUs: allocatable minus what pods bound there request."""
    used: dict[str, int] = {}
    for pod in pods:
        if pod.node:
            used[pod.node] = used.get(pod.node, 0) + pod.gpus
    return {n.name: max(0, n.allocatable - used.get(n.name, 0)) for n in nodes if n.usable and n.allocatable > 0}


def stranded(idle: Mapping[str, int], pending: Sequence[int]) -> int:
    """Idle GPUs that no pending request could use: the idle GPUs of every node on which none of
    ``pending`` (GPU counts of unscheduled pods asking for at least one) fits. 0 when nothing is
    pending: idle capacity nobody asks for is spare, not stranded."""
    wanted = [r for r in pending if r > 0]
    if not wanted:
        return 0
    smallest = min(wanted)
    return sum(free for free in idle.values() if free < smallest)


def fragmenting_fill(capacity: Mapping[str, int], *, request: int, rng: random.Random,
                     max_pods_per_node: int = 1) -> dict[str, list[int]]:
    """GPU counts of filler pods per node so that no node keeps ``request`` GPUs free while the
    nodes together keep at least ``request`` free: the fragmented state.

    ``capacity`` is each node's idle GPUs now. Each node gets at most ``max_pods_per_node`` fillers
    of mixed sizes drawn from ``rng``. ValueError when no fill can do it (too few GPUs in all, or
    a request no node could ever fit)."""
    if request < 1 or max_pods_per_node < 1:
        raise ValueError("request and max_pods_per_node must each be >= 1")
    if not capacity or max(capacity.values()) < request:
        raise ValueError(f"no node has {request} GPUs to strand (idle per node: {dict(capacity) or 'none'})")
    # The least each node must take to keep fewer than `request` free.
    lowest = {node: max(0, free - request + 1) for node, free in capacity.items()}
    slack = sum(capacity.values()) - sum(lowest.values()) - request
    if slack < 0:
        raise ValueError(f"{sum(capacity.values())} idle GPUs cannot hold {request} idle across nodes while no "
                         f"node fits {request} (idle per node: {dict(capacity)})")
    taken = dict(lowest)
    for node in rng.sample(sorted(capacity), len(capacity)):  # spend the slack at random: mixed shapes
        extra = rng.randint(0, min(slack, capacity[node] - taken[node]))
        taken[node] += extra
        slack -= extra
    return {node: _split(gpus, max_pods_per_node, rng) for node, gpus in sorted(taken.items()) if gpus > 0}


def _split(gpus: int, parts: int, rng: random.Random) -> list[int]:
    """``gpus`` as up to ``parts`` positive sizes drawn at random (summing to ``gpus``)."""
    parts = min(parts, gpus)
    cuts = sorted(rng.sample(range(1, gpus), parts - 1)) if parts > 1 else []
    bounds = [0, *cuts, gpus]
    return [b - a for a, b in itertools.pairwise(bounds)]


def format_counts(counts: Mapping[str, int]) -> str:
    """``{"a": 1, "b": 2}`` -> ``"a=1,b=2"`` (sorted), the events' form."""
    return ",".join(f"{k}={v}" for k, v in sorted(counts.items()))


def parse_counts(text: str) -> dict[str, int]:
    """The inverse of :func:`format_counts`; ValueError on a malformed entry."""
    result: dict[str, int] = {}
    for item in filter(None, text.split(",")):
        key, sep, value = item.rpartition("=")
        if not sep or not key:
            raise ValueError(f"malformed count {item!r} in {text!r}")
        result[key] = int(value)
    return result
