"""Node drain: cordon the node, evict its pods gracefully; heal uncordons it.

The Jobs replace the evicted pods on the remaining nodes, as Kubernetes does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from harness.cluster.base import Cluster, EventSink
from harness.errors import HarnessError
from harness.history.events import FaultHealed, FaultInjected

NAME = "node-drain"


def drain_node_of(
    *,
    cluster: Cluster,
    sink: EventSink,
    labels: Mapping[str, str],
    grace_period_seconds: float | None,
    fault_id: str,
) -> tuple[str, Callable[[], None]]:
    """Drain the node running the first running pod matching ``labels``.

    Returns the node and its (idempotent) heal. The injected event names that pod,
    so the history links the drain to the training attempt it ended.
    """
    pods = [p for p in cluster.list_pods(labels=labels) if p.phase == "Running" and not p.deleting]
    if not pods:
        wanted = ",".join(f"{k}={v}" for k, v in labels.items())
        raise HarnessError(f"node-drain found no running pod with labels {wanted}, so no node to drain")
    pod = pods[0]
    node = pod.node
    on_node = [p.name for p in cluster.list_pods() if p.node == node and p.phase == "Running" and not p.deleting]
    sink(FaultInjected(ts=time.time(), pod=pod.name, job=pod.job, fault=NAME, fault_id=fault_id, target=node,
                       detail=f"cordoned {node} and evicted {', '.join(on_node)}",
                       grace_period_seconds=-1.0 if grace_period_seconds is None else grace_period_seconds))
    healed = False

    def heal() -> None:
        nonlocal healed
        if healed:
            return
        cluster.uncordon(node)
        healed = True
        sink(FaultHealed(ts=time.time(), pod=pod.name, job=pod.job, fault=NAME, fault_id=fault_id,
                         detail=f"uncordoned {node}"))

    try:
        cluster.drain(node, grace_period_seconds=grace_period_seconds)
    except BaseException:
        heal()
        raise
    return node, heal
