"""Straggler: the running training pod gets a small share of one CPU for a while, then its CPU back.

On the embedded cluster the fault sets ``mlchaos.io/cpu-limit`` on the running training pod
(:mod:`harness.cluster.fault_control`); its node agent gives the container's CPU cgroup a CFS quota of
``cpu_limit`` cores, so every step takes several times longer, as on a node with a noisy neighbour or a
throttled CPU. After ``duration_seconds`` the fault takes the annotation back and the node removes the
quota. ``inject`` blocks for the window, so the history's ``FaultInjected``/``FaultHealed`` pair brackets it.

The slow pod and its node are named in the fault's target and detail (what ``straggler-detected``
attributes the slowdown to). Heal removes the annotation (harmless twice, and for a pod gone already);
the Kubernetes backend records it for ``mlchaos heal`` before setting it. Other clusters' kubelets
ignore the annotation: the fault refuses to act there.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from harness.cluster.embedded.node_agent.quantity import cpu_cores
from harness.cluster.fault_control import CPU_LIMIT_ANNOTATION
from harness.faults.pod_delete import running_pods
from harness.faults.pod_resources import require_process_nodes, set_and_confirm, take_back
from harness.faults.role import FaultContext, Heal, Target

__all__ = ["NAME", "STRAGGLER", "Straggler", "StragglerParams"]

NAME = "straggler"
_ELSEWHERE = ("give the training step a low resources.limits.cpu, or run a CPU hog on its node, to see a "
              "straggler there")


@dataclass(frozen=True, kw_only=True)
class StragglerParams:
    """Cap the running pod ``labels`` picks (empty: the training step's) at ``cpu_limit`` (a Kubernetes CPU
    quantity) for ``duration_seconds``."""

    labels: Mapping[str, str] = field(default_factory=dict)
    cpu_limit: str = "100m"
    duration_seconds: float = 15.0

    def __post_init__(self) -> None:
        cores = cpu_cores(self.cpu_limit)  # a one-line HarnessError for a bad quantity
        if not cores > 0:
            raise ValueError(f"straggler cpu_limit must be above 0 cores, got {self.cpu_limit!r}")
        if not math.isfinite(self.duration_seconds) or self.duration_seconds <= 0:
            raise ValueError(f"straggler duration_seconds must be > 0, got {self.duration_seconds}")


class Straggler:
    name = NAME

    def plan(self, ctx: FaultContext, params: StragglerParams) -> Target:
        refusal = require_process_nodes(ctx.cluster, fault=NAME, elsewhere=_ELSEWHERE)
        pod = running_pods(ctx.cluster, ctx.pod_labels(params.labels), fault=NAME)[0]
        return Target(name=pod.name, pod=pod.name, job=pod.job, excludes=(f"pod:{pod.name}",), refusal=refusal,
                      detail=f"slow pod {pod.name} on node {pod.node}: CPU limited to {params.cpu_limit} cores "
                             f"through {CPU_LIMIT_ANNOTATION} for {params.duration_seconds:g} s")

    def inject(self, ctx: FaultContext, params: StragglerParams, target: Target) -> Heal:
        cluster = ctx.cluster
        done: list[str] = []

        def heal() -> str:
            return "; ".join([*done, take_back(cluster, target.name, CPU_LIMIT_ANNOTATION)])

        try:
            answer = set_and_confirm(cluster, target.name, CPU_LIMIT_ANNOTATION, params.cpu_limit)
            done.append(f"node answered: {answer}")
            time.sleep(params.duration_seconds)  # the straggler window; the heal ends it
            done.append(f"slowed for {params.duration_seconds:g} s")
        except BaseException:
            heal()
            raise
        return heal


STRAGGLER = Straggler()
