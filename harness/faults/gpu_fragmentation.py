"""GPU fragmentation: filler Jobs of mixed GPU shapes leave enough GPUs idle cluster-wide, none enough on one node.

The fault reads every node's idle ``nvidia.com/gpu`` and submits sleeping filler
Jobs pinned to the nodes (``kubernetes.io/hostname``), with sizes drawn from the
fault's seed (:func:`harness.evidence.gpu_capacity.fragmenting_fill`), so that the
cluster keeps at least ``gpus`` idle in total while no node keeps ``gpus`` idle:
a pod asking for ``gpus`` fits only if the scheduler preempts fillers. Fillers run
at ``priority_class`` ("" is the cluster's default, priority 0, the backfill
value; the backfill class itself is limited to one pod by the run's quota).

While active, a :class:`harness.services.gpu_sampler.GpuSampler` writes the
cluster's GPU scheduling state to the history every ``sample_interval_seconds``.
Heal stops the sampler and deletes the filler Jobs and their pods; the undo record
(label selector) lets ``mlchaos heal`` delete them after a killed harness.
One fragmentation at a time (group ``gpus``).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from kubernetes import client

from harness.cluster.base import JobSpec
from harness.cluster.kube.backend import KubernetesCluster
from harness.cluster.kube.undo_kinds import add_jobs_record
from harness.errors import HarnessError
from harness.evidence.gpu_capacity import fragmenting_fill
from harness.faults.role import FaultContext, Heal, Target
from harness.history.events import Event
from harness.services.gpu_sampler import GpuSampler, read_gpu_state

__all__ = ["FILLER_LABEL", "GPU_FRAGMENTATION", "GpuFragmentation", "GpuFragmentationParams", "NAME"]

NAME = "gpu-fragmentation"
FILLER_LABEL = "mlchaos.io/gpu-filler"
_SCHEDULE_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True, kw_only=True)
class GpuFragmentationParams:
    """Strand ``gpus`` GPUs: at most ``max_pods_per_node`` fillers per node, each sleeping ``sleep_seconds``."""

    gpus: int
    max_pods_per_node: int = 1
    priority_class: str = ""
    sleep_seconds: int = 3600
    sample_interval_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.gpus < 1 or self.max_pods_per_node < 1 or self.sleep_seconds < 1:
            raise ValueError("gpus, max_pods_per_node and sleep_seconds must each be >= 1")
        if not 0.1 <= self.sample_interval_seconds <= 60:
            raise ValueError(f"sample_interval_seconds must be within 0.1 and 60, got {self.sample_interval_seconds}")


def _kube(ctx: FaultContext) -> KubernetesCluster:
    if not isinstance(ctx.cluster, KubernetesCluster):
        raise HarnessError(f"{NAME} needs a Kubernetes cluster backend, got {type(ctx.cluster).__name__}")
    return ctx.cluster


def _noop(event: Event) -> None:
    """Fillers are not the judged run: their pods' events stay out of the history."""


class GpuFragmentation:
    name = NAME

    def plan(self, ctx: FaultContext, params: GpuFragmentationParams) -> Target:
        kube = _kube(ctx)
        state = read_gpu_state(client.CoreV1Api(kube.api_client))
        idle = state.idle()
        tag = f"{ctx.seed % 0xFFFFFF:06x}"
        selector = f"{FILLER_LABEL}={tag}"
        try:
            fill = fragmenting_fill(idle, request=params.gpus, rng=ctx.rng(),
                                    max_pods_per_node=params.max_pods_per_node)
        except ValueError as exc:
            return Target(name=tag, detail="", excludes=("gpus",), refusal=f"{NAME}: {exc}")
        shapes = "; ".join(f"{node}: {'+'.join(map(str, sizes))} of {idle[node]}" for node, sizes in fill.items())
        left = {node: idle[node] - sum(fill.get(node, [])) for node in idle}
        return Target(
            name=tag, excludes=("gpus",),
            detail=f"filler jobs {selector} ({shapes}) leave {sum(left.values())} GPUs idle, at most "
                   f"{max(left.values())} on one node, below a request of {params.gpus}",
            undo=lambda log: add_jobs_record(log, kubeconfig=kube.kubeconfig, context=kube.context,
                                             namespace=kube.namespace, selector=selector,
                                             description=f"{NAME} filler jobs {selector}",
                                             ephemeral=kube.kind == "embedded"))

    def inject(self, ctx: FaultContext, params: GpuFragmentationParams, target: Target) -> Heal:
        kube = _kube(ctx)
        core = client.CoreV1Api(kube.api_client)
        # Re-draw the plan's fill: the same seed draws the same shapes.
        fill = fragmenting_fill(read_gpu_state(core).idle(), request=params.gpus, rng=ctx.rng(),
                                max_pods_per_node=params.max_pods_per_node)
        jobs: list[str] = []
        sampler = GpuSampler(core=core, namespace=kube.namespace, sink=ctx.sink or _noop,
                             interval=params.sample_interval_seconds)
        healed = False

        def heal() -> str:
            nonlocal healed
            sampler.stop()
            for job in jobs:
                with contextlib.suppress(HarnessError):  # already gone
                    kube.delete_job(job)
            first, healed = not healed, True
            return f"deleted {len(jobs)} filler jobs; {sampler.samples} GPU samples" if first else "already healed"

        try:
            for node, sizes in fill.items():
                for i, size in enumerate(sizes):
                    spec = _filler(name=f"gpu-filler-{target.name}-{node}-{i}", node=node, gpus=size,
                                   tag=target.name, params=params)
                    jobs.append(spec.name)
                    kube.submit_job(spec, sink=_noop)
            _wait_bound(kube, f"{FILLER_LABEL}={target.name}", count=len(jobs))
            sampler.start()
        except BaseException:
            heal()
            raise
        return heal


def _filler(*, name: str, node: str, gpus: int, tag: str, params: GpuFragmentationParams) -> JobSpec:
    return JobSpec(
        name=name,
        command=("python", "-c", f"import time; time.sleep({params.sleep_seconds})"),
        labels={FILLER_LABEL: tag},
        backoff_limit=100,  # preempted fillers come back, as a backfill's retried pods do
        priority_class=params.priority_class,
        termination_grace_period_seconds=5,
        gpus=gpus,
        node_selector={"kubernetes.io/hostname": node},
    )


def _wait_bound(kube: KubernetesCluster, selector: str, *, count: int) -> None:
    """Wait until ``count`` filler pods are bound to their nodes: only then is the cluster fragmented."""
    key, _, value = selector.partition("=")
    deadline = time.monotonic() + _SCHEDULE_TIMEOUT_SECONDS
    while True:
        bound = [p for p in kube.list_pods(labels={key: value}) if p.node and not p.gone and not p.deleting]
        if len(bound) >= count:
            return
        if time.monotonic() > deadline:
            raise HarnessError(f"only {len(bound)} of {count} GPU filler pods were scheduled within "
                               f"{_SCHEDULE_TIMEOUT_SECONDS:g} s; is nvidia.com/gpu advertised on the nodes?")
        time.sleep(0.2)


GPU_FRAGMENTATION = GpuFragmentation()
