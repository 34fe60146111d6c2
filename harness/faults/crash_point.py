"""Crash-point kills: a pod killed while it holds inside a half-done write (a crash-consistency sweep).

The sweep draws its kills from the fault's seed (:func:`harness.faults.crash_plan.draw_plan`): which crash
points, which occurrence of each, forced (SIGKILL at once) or graceful (SIGTERM, then SIGKILL after the grace
period). The run is started with exactly those occurrences armed (:mod:`mlchaos_probe.crash_points`): the
pipeline prints a ``crash_point`` event there and holds, and :class:`CrashPointKill` deletes the pod through
the cluster as ``kubectl delete pod`` does. Like a pod delete, nothing is left to undo: the Job replaces the pod.
"""

from __future__ import annotations

from harness.errors import HarnessError
from harness.faults.crash_plan import CrashKill, describe
from harness.faults.pod_delete import running_pods
from harness.faults.role import FaultContext, Heal, Target

__all__ = ["CRASH_POINT_KILL", "NAME", "CrashPointKill"]

NAME = "crash-point"


class CrashPointKill:
    name = NAME

    def plan(self, ctx: FaultContext, params: CrashKill) -> Target:
        pods = running_pods(ctx.cluster, ctx.run_labels, fault=NAME)
        pod = next((p for p in pods if p.name == params.pod), None)
        if pod is None:
            raise HarnessError(f"crash-point: pod {params.pod} is no longer running")
        return Target(name=pod.name, pod=pod.name, job=pod.job, excludes=(f"pod:{pod.name}",),
                      detail=f"deleted pod {pod.name} on {pod.node} at {describe(params)}",
                      grace_period_seconds=params.grace)

    def inject(self, ctx: FaultContext, params: CrashKill, target: Target) -> Heal:
        final = ctx.cluster.delete_pod(target.name, grace_period_seconds=params.grace)
        return lambda: f"pod {final.name} terminated with exit code {final.exit_code}"


CRASH_POINT_KILL = CrashPointKill()
