"""Spot preemption: a termination notice, as aws-node-termination-handler delivers it, then the node is gone.

Sequence (``inject`` blocks for the whole notice window):

1. taint the training pod's node ``aws-node-termination-handler/spot-itn:NoSchedule`` and cordon it;
2. evict the run's pods there through the Eviction API with grace = the notice window (a pod that
   handles SIGTERM checkpoints and exits; one that ignores it is SIGKILLed when the window ends);
3. when the window ends, force-delete whatever of the run still runs there and stop the node
   (the embedded cluster's node agent: the node stops heartbeating, as a terminated instance).

On kind and existing clusters the harness does not run the nodes, so step 3 only force-deletes the
pods (grace 0) and the node stays up, tainted and cordoned, until healed; the heal's detail says so.
Heal: start the node again (embedded), remove the taint, uncordon; each part is idempotent. The
cluster writes undo records for the taint and the cordon before making them; a stopped node agent
belongs to the embedded cluster, which ``mlchaos heal`` removes whole after a killed harness.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from harness.cluster.base import NodeControlUnsupported
from harness.errors import HarnessError
from harness.faults.pod_delete import running_pods
from harness.faults.role import FaultContext, Heal, Target

__all__ = ["NAME", "PROVIDER_NOTICE_SECONDS", "SPOT_PREEMPTION", "SPOT_TAINT", "SpotPreemption",
           "SpotPreemptionParams"]

NAME = "spot-preemption"
SPOT_TAINT = "aws-node-termination-handler/spot-itn"
"""The taint aws-node-termination-handler puts on a node that got a spot interruption notice."""
DEFAULT_NOTICE_SECONDS = 30.0
PROVIDER_NOTICE_SECONDS: Mapping[str, float] = {"aws": 120.0, "gcp": 30.0, "gke-spot": 15.0}
"""How long each provider warns before reclaiming a spot/preemptible instance."""


@dataclass(frozen=True, kw_only=True)
class SpotPreemptionParams:
    """Preempt the node of the first running pod ``labels`` picks (empty: the training step's).

    The notice window is ``notice_seconds`` when given, else ``provider``'s preset
    (:data:`PROVIDER_NOTICE_SECONDS`), else 30 s.
    """

    labels: Mapping[str, str] = field(default_factory=dict)
    notice_seconds: float | None = None
    provider: str = ""

    def __post_init__(self) -> None:
        if self.provider and self.provider not in PROVIDER_NOTICE_SECONDS:
            raise ValueError(f"provider must be one of {', '.join(PROVIDER_NOTICE_SECONDS)}, got {self.provider!r}")
        notice = self.notice_seconds
        if notice is not None and (not math.isfinite(notice) or notice < 0):
            raise ValueError(f"notice_seconds must be >= 0, got {notice}")

    @property
    def notice(self) -> float:
        if self.notice_seconds is not None:
            return float(self.notice_seconds)
        return PROVIDER_NOTICE_SECONDS[self.provider] if self.provider else DEFAULT_NOTICE_SECONDS


class SpotPreemption:
    name = NAME

    def plan(self, ctx: FaultContext, params: SpotPreemptionParams) -> Target:
        pod = running_pods(ctx.cluster, ctx.pod_labels(params.labels), fault=NAME)[0]
        notice = params.notice
        return Target(
            name=pod.node, pod=pod.name, job=pod.job, excludes=(f"node:{pod.node}",), grace_period_seconds=notice,
            detail=(f"termination notice to {pod.node} ({SPOT_TAINT} taint, cordon, evictions with a {notice:g} s "
                    f"grace); the node goes when the {notice:g} s window ends"))

    def inject(self, ctx: FaultContext, params: SpotPreemptionParams, target: Target) -> Heal:
        cluster, node = ctx.cluster, target.name
        window_ends = time.monotonic() + params.notice
        stopped: list[bool] = []  # [] not stopped; [True] stopped by us; [False] not stoppable (kind, existing)

        def heal() -> str:
            done = []
            if stopped == [True]:
                cluster.start_node(node)  # idempotent: a running agent is left alone
                done.append(f"restarted {node}")
            cluster.untaint(node, key=SPOT_TAINT)  # idempotent: only a taint this run added
            cluster.uncordon(node)
            done.append(f"removed the {SPOT_TAINT} taint and uncordoned {node}")
            if stopped == [False]:
                done.append("(the node could not be stopped on this cluster: its pods were force-deleted instead)")
            return "; ".join(done)

        try:
            cluster.taint(node, key=SPOT_TAINT, effect="NoSchedule")
            cluster.drain(node, grace_period_seconds=params.notice)  # cordons first; waits until they are gone
            time.sleep(max(0.0, window_ends - time.monotonic()))
            # The instance is reclaimed: nothing of the run survives on it.
            for pod in cluster.list_pods(labels=ctx.run_labels):
                if pod.node == node and pod.phase in ("Pending", "Running") and not pod.gone:
                    with contextlib.suppress(HarnessError):  # gone meanwhile; the node's stop ends the rest
                        cluster.delete_pod(pod.name, grace_period_seconds=0)
            try:
                cluster.stop_node(node)
                stopped.append(True)
            except NodeControlUnsupported:
                stopped.append(False)
        except BaseException:
            heal()
            raise
        return heal


SPOT_PREEMPTION = SpotPreemption()
