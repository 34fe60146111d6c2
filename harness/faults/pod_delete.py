"""Pod delete: SIGTERM with a grace period, then SIGKILL, as ``kubectl delete pod``.

Nothing is left to undo: the Job controller replaces the pod. The fault is over
once the deleted pod has terminated; healing it records how the pod ended. One
fault per pod, so the history links each to the training attempt it ended.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from harness.cluster.base import Cluster, PodInfo
from harness.errors import HarnessError
from harness.faults.recorder import FaultRecorder
from harness.faults.role import FaultContext, Heal, Target

__all__ = ["NAME", "POD_DELETE", "PodDelete", "PodDeleteParams", "delete_running_pods", "running_pods"]

NAME = "pod-delete"


@dataclass(frozen=True, kw_only=True)
class PodDeleteParams:
    """Delete the running pod named ``pod`` among those ``labels`` picks (an empty mapping: the
    training step's), or the first of them when ``pod`` is ""."""

    labels: Mapping[str, str] = field(default_factory=dict)
    grace_period_seconds: float = 30.0
    pod: str = ""

    def __post_init__(self) -> None:
        if not math.isfinite(self.grace_period_seconds) or self.grace_period_seconds < 0:
            raise ValueError(f"grace_period_seconds must be >= 0, got {self.grace_period_seconds}")


class PodDelete:
    name = NAME

    def plan(self, ctx: FaultContext, params: PodDeleteParams) -> Target:
        pods = running_pods(ctx.cluster, ctx.pod_labels(params.labels), fault=NAME)
        pod = next((p for p in pods if p.name == params.pod), None) if params.pod else pods[0]
        if pod is None:
            raise HarnessError(f"pod-delete: pod {params.pod} is no longer running")
        grace = params.grace_period_seconds
        how = "SIGKILL at once" if grace == 0 else f"SIGTERM, SIGKILL after {grace:g}s"
        return Target(name=pod.name, pod=pod.name, job=pod.job, excludes=(f"pod:{pod.name}",),
                      detail=f"deleted pod {pod.name} on {pod.node} ({how})", grace_period_seconds=grace)

    def inject(self, ctx: FaultContext, params: PodDeleteParams, target: Target) -> Heal:
        final = ctx.cluster.delete_pod(target.name, grace_period_seconds=params.grace_period_seconds)
        return lambda: f"pod {final.name} terminated with exit code {final.exit_code}"


POD_DELETE = PodDelete()


def running_pods(cluster: Cluster, labels: Mapping[str, str], *, fault: str) -> list[PodInfo]:
    """The Running, not deleting pods matching ``labels``. A HarnessError when there are none: a fault
    that hits nothing must not pass silently."""
    pods = [p for p in cluster.list_pods(labels=labels) if p.phase == "Running" and not p.deleting]
    if not pods:
        wanted = ",".join(f"{k}={v}" for k, v in labels.items())
        raise HarnessError(f"{fault} found no running pod with labels {wanted} (has the pipeline run started?)")
    return pods


def delete_running_pods(faults: FaultRecorder, params: PodDeleteParams) -> list[str]:
    """Delete every running pod ``params.labels`` picks, one fault each, each healed once its pod has
    terminated; returns how each pod ended."""
    ctx = faults.context
    pods = running_pods(ctx.cluster, ctx.pod_labels(params.labels), fault=NAME)
    return [faults.heal_one(faults.inject(POD_DELETE, replace(params, pod=p.name)).fault_id) for p in pods]
