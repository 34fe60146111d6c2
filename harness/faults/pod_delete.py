"""Pod delete: SIGTERM with a grace period, then SIGKILL, as ``kubectl delete pod``.

Nothing is left to undo: the Job controller replaces the pod. The fault is
healed when the deleted pod has terminated.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from harness.cluster.base import Cluster, EventSink, PodInfo
from harness.errors import HarnessError
from harness.history.events import FaultHealed, FaultInjected

NAME = "pod-delete"


def delete_running_pods(
    *,
    cluster: Cluster,
    sink: EventSink,
    labels: Mapping[str, str],
    grace_period_seconds: float,
    fault_id: str,
) -> list[PodInfo]:
    """Delete every Running pod matching ``labels``; returns the pods as they ended.

    Raises ``HarnessError`` when no running pod matches (a fault that hits nothing
    must not pass silently).
    """
    pods = [p for p in cluster.list_pods(labels=labels) if p.phase == "Running" and not p.deleting]
    if not pods:
        wanted = ",".join(f"{k}={v}" for k, v in labels.items())
        raise HarnessError(f"pod-delete found no running pod with labels {wanted}")
    ended: list[PodInfo] = []
    for pod in pods:
        how = "SIGKILL at once" if grace_period_seconds == 0 else f"SIGTERM, SIGKILL after {grace_period_seconds:g}s"
        sink(
            FaultInjected(
                ts=time.time(),
                pod=pod.name,
                job=pod.job,
                fault=NAME,
                fault_id=fault_id,
                target=pod.name,
                detail=f"deleted pod {pod.name} on {pod.node} ({how})",
                grace_period_seconds=grace_period_seconds,
            )
        )
        final = cluster.delete_pod(pod.name, grace_period_seconds=grace_period_seconds)
        sink(
            FaultHealed(
                ts=time.time(),
                pod=pod.name,
                job=pod.job,
                fault=NAME,
                fault_id=fault_id,
                detail=f"pod {pod.name} terminated with exit code {final.exit_code}",
            )
        )
        ended.append(final)
    return ended
