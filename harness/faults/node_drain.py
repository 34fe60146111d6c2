"""Node drain: cordon the node, evict its pods gracefully; heal uncordons it.

The Jobs replace the evicted pods on the remaining nodes, as Kubernetes does. The
cluster writes the cordon's undo record itself. Two drains of one node exclude
each other (group ``node:<name>``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from harness.faults.pod_delete import running_pods
from harness.faults.role import FaultContext, Heal, Target

__all__ = ["NAME", "NODE_DRAIN", "NodeDrain", "NodeDrainParams"]

NAME = "node-drain"


@dataclass(frozen=True, kw_only=True)
class NodeDrainParams:
    """Drain the node running the first running pod ``labels`` picks (an empty mapping: the training
    step's), evicting with ``grace_period_seconds`` (None: each pod's own)."""

    labels: Mapping[str, str] = field(default_factory=dict)
    grace_period_seconds: float | None = 30.0

    def __post_init__(self) -> None:
        grace = self.grace_period_seconds
        if grace is not None and (not math.isfinite(grace) or grace < 0):
            raise ValueError(f"grace_period_seconds must be >= 0, got {grace}")


class NodeDrain:
    name = NAME

    def plan(self, ctx: FaultContext, params: NodeDrainParams) -> Target:
        pod = running_pods(ctx.cluster, ctx.pod_labels(params.labels), fault=NAME)[0]
        on_node = [p.name for p in ctx.cluster.list_pods()
                   if p.node == pod.node and p.phase == "Running" and not p.deleting]
        grace = -1.0 if params.grace_period_seconds is None else params.grace_period_seconds
        return Target(name=pod.node, pod=pod.name, job=pod.job, excludes=(f"node:{pod.node}",),
                      detail=f"cordoned {pod.node} and evicted {', '.join(on_node)}", grace_period_seconds=grace)

    def inject(self, ctx: FaultContext, params: NodeDrainParams, target: Target) -> Heal:
        node = target.name

        def heal() -> str:
            ctx.cluster.uncordon(node)  # idempotent: uncordoning a node this run did not cordon does nothing
            return f"uncordoned {node}"

        try:
            ctx.cluster.drain(node, grace_period_seconds=params.grace_period_seconds)
        except BaseException:
            heal()
            raise
        return heal


NODE_DRAIN = NodeDrain()
