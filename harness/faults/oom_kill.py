"""OOM kill: the training pod exceeds a memory limit mid-run and the kernel's OOM killer ends it.

On the embedded cluster the fault sets ``mlchaos.io/memory-limit`` on the running training pod
(:mod:`harness.cluster.fault_control`). Its node agent caps the container's memory cgroup at the
limit (or at the tightest limit the kernel accepts, the memory it cannot reclaim) and grows the
pod's memory past it with a ballast the OOM killer spares, so the kernel OOM-kills the training
process; the node reports it as a kubelet does, exit 137, reason ``OOMKilled``. With ``repeat``
the next ``repeat - 1`` attempts (replacement pods, or the restarted container) are hit the
moment they run, as a pipeline whose memory need exceeds its limit at the same step is: an OOM
loop. Each attempt is waited for until it ended (at most ``timeout_seconds``).

Heal removes the annotation from every pod the fault set it on (harmless twice, and for pods
gone already); the Kubernetes backend recorded each annotation for ``mlchaos heal`` before
setting it. Other clusters' kubelets ignore the annotation: the fault refuses to act there.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from harness.cluster.base import PodInfo
from harness.cluster.embedded.node_agent.quantity import memory_bytes
from harness.cluster.fault_control import MEMORY_LIMIT_ANNOTATION
from harness.errors import HarnessError
from harness.faults.pod_delete import running_pods
from harness.faults.pod_resources import require_process_nodes, set_and_confirm, take_back, wait_ended
from harness.faults.role import FaultContext, Heal, Target

__all__ = ["NAME", "OOM_KILL", "OomKill", "OomKillParams"]

NAME = "oom-kill"
_ELSEWHERE = ("from outside, nothing can make a container's memory grow there; give the training step a "
              "resources.limits.memory below its peak to see a real OOMKilled exit")


@dataclass(frozen=True, kw_only=True)
class OomKillParams:
    """Cap the memory of the running pod ``labels`` picks (empty: the training step's) at ``memory_limit``
    (a Kubernetes quantity) until the kernel OOM-kills it; hit ``repeat`` attempts in a row."""

    labels: Mapping[str, str] = field(default_factory=dict)
    memory_limit: str = "64Mi"
    repeat: int = 1
    timeout_seconds: float = 60.0

    def __post_init__(self) -> None:
        memory_bytes(self.memory_limit)  # a one-line HarnessError for a bad quantity
        if self.repeat < 1:
            raise ValueError(f"oom-kill repeat must be >= 1, got {self.repeat}")
        if not math.isfinite(self.timeout_seconds) or self.timeout_seconds <= 0:
            raise ValueError(f"oom-kill timeout_seconds must be > 0, got {self.timeout_seconds}")


class OomKill:
    name = NAME

    def plan(self, ctx: FaultContext, params: OomKillParams) -> Target:
        refusal = require_process_nodes(ctx.cluster, fault=NAME, elsewhere=_ELSEWHERE)
        pod = running_pods(ctx.cluster, ctx.pod_labels(params.labels), fault=NAME)[0]
        loop = f", then each of the next {params.repeat - 1} attempt(s) as it starts" if params.repeat > 1 else ""
        return Target(name=pod.name, pod=pod.name, job=pod.job, excludes=(f"pod:{pod.name}",), refusal=refusal,
                      detail=f"memory limit {params.memory_limit} on pod {pod.name} on node {pod.node} through "
                             f"{MEMORY_LIMIT_ANNOTATION}, grown past it until the kernel OOM-kills it{loop}")

    def inject(self, ctx: FaultContext, params: OomKillParams, target: Target) -> Heal:
        cluster = ctx.cluster
        hit: list[str] = []
        ends: list[str] = []

        def heal() -> str:
            undone = [take_back(cluster, name, MEMORY_LIMIT_ANNOTATION) for name in hit]
            return "; ".join(ends + undone)

        pod: PodInfo | None = next(p for p in cluster.list_pods(labels=ctx.pod_labels(params.labels))
                                   if p.name == target.name)
        seen: set[tuple[str, int]] = set()
        try:
            for attempt in range(params.repeat):
                if pod is None:
                    pod = self._next_attempt(ctx, params, seen=seen, target=target)
                seen.add((pod.name, pod.restart_count))
                if pod.name not in hit:
                    hit.append(pod.name)
                set_and_confirm(cluster, pod.name, MEMORY_LIMIT_ANNOTATION, params.memory_limit,
                                timeout=params.timeout_seconds)
                ended = wait_ended(cluster, pod, timeout=params.timeout_seconds)
                if ended is None:
                    ends.append(f"attempt {attempt + 1}: pod {pod.name} still ran {params.timeout_seconds:g} s on")
                    break
                ends.append(f"attempt {attempt + 1}: pod {pod.name} on {pod.node} ended with exit code "
                            f"{ended.exit_code} ({ended.reason or 'no reason'})")
                take_back(cluster, pod.name, MEMORY_LIMIT_ANNOTATION)  # a restarted container starts unharmed
                pod = None
        except BaseException:
            heal()
            raise
        return heal

    def _next_attempt(self, ctx: FaultContext, params: OomKillParams, *, seen: set[tuple[str, int]],
                      target: Target) -> PodInfo:
        """The training attempt after the one just killed: a new pod of the Job, or the same pod's container
        restarted in place (its restart count grew), once it is Running (its container may still be starting:
        the node applies the annotation as it starts)."""
        deadline = time.monotonic() + params.timeout_seconds
        while time.monotonic() < deadline:
            for p in ctx.cluster.list_pods(labels=ctx.pod_labels(params.labels)):
                if p.phase == "Running" and not p.deleting and p.job == target.job \
                        and (p.name, p.restart_count) not in seen:
                    return p
            time.sleep(0.1)
        raise HarnessError(f"{NAME}: no new attempt of job {target.job} ran within {params.timeout_seconds:g} s")


OOM_KILL = OomKill()
