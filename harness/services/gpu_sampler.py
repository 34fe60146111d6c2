"""Samples Kubernetes' GPU scheduling state about once a second into the history.

Each sample reads the nodes' allocatable ``nvidia.com/gpu`` and every unfinished
pod's GPU limits (all namespaces: the scheduler accounts them all) and writes a
``GpuCapacitySampled`` event: idle GPUs per node, pending GPU requests, stranded
GPUs (:func:`harness.evidence.gpu_capacity.stranded`) and the preemptions the
scheduler has reported in ``namespace`` so far (its ``Preempted`` events). For
each GPU pod of ``namespace`` it also writes ``GpuPodCreated`` once and
``GpuPodScheduled`` once it is bound (times from the pod's creation timestamp and
its PodScheduled condition: Kubernetes' own clock, second resolution).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubernetes import client

from harness.cluster.kube.objects import labels_of, meta, name_of
from harness.evidence.gpu_capacity import GPU_RESOURCE, GpuNode, GpuPod, format_counts, idle_per_node, stranded
from harness.history.events import Event, GpuCapacitySampled, GpuPodCreated, GpuPodScheduled

__all__ = ["GpuSampler", "GpuState", "read_gpu_state"]

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_SECONDS = 1.0


@dataclass(frozen=True, kw_only=True)
class GpuState:
    """One reading of the cluster: its GPU nodes and its unfinished GPU pods."""

    nodes: tuple[GpuNode, ...]
    pods: tuple[GpuPod, ...]

    def idle(self) -> dict[str, int]:
        return idle_per_node(self.nodes, self.pods)


def _gpus(pod: client.V1Pod) -> int:
    containers = (pod.spec.containers if pod.spec else None) or []
    total = 0
    for c in containers:
        resources = c.resources or client.V1ResourceRequirements()
        total += int((resources.limits or {}).get(GPU_RESOURCE, 0) or (resources.requests or {}).get(GPU_RESOURCE, 0))
    return total


def read_gpu_state(core: client.CoreV1Api) -> GpuState:
    """The nodes' allocatable GPUs and the GPU pods that hold or wait for them, read now."""
    nodes = []
    for n in core.list_node().items:
        status = n.status or client.V1NodeStatus()
        ready = any(c.type == "Ready" and c.status == "True" for c in (status.conditions or []))
        nodes.append(GpuNode(name=name_of(n), allocatable=int((status.allocatable or {}).get(GPU_RESOURCE, 0)),
                             usable=ready and not (n.spec and n.spec.unschedulable)))
    pods = core.list_pod_for_all_namespaces(field_selector="status.phase!=Succeeded,status.phase!=Failed").items
    gpu_pods = tuple(GpuPod(name=f"{meta(p).namespace}/{name_of(p)}", gpus=_gpus(p),
                            node=(p.spec.node_name if p.spec else "") or "")
                     for p in pods if _gpus(p) > 0 and not meta(p).deletion_timestamp)
    return GpuState(nodes=tuple(sorted(nodes, key=lambda n: n.name)), pods=gpu_pods)


def _ts(value: datetime | None, default: float) -> float:
    return value.timestamp() if value is not None else default


class GpuSampler:
    """Samples every ``interval`` seconds from :meth:`start` until :meth:`stop` (which takes one last
    sample). Errors reading the API are logged and the sample skipped: a gap, never a made-up value."""

    def __init__(self, *, core: client.CoreV1Api, namespace: str, sink: Callable[[Event], None],
                 interval: float = DEFAULT_INTERVAL_SECONDS) -> None:
        self._core = core
        self._namespace = namespace
        self._sink = sink
        self._interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gpu-sampler", daemon=True)
        self._created: set[str] = set()
        self._scheduled: set[str] = set()
        self._preempted: set[str] = set()
        self._lock = threading.Lock()
        self.samples = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling (idempotent); one last sample first, so the end of the window is recorded."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(10)
        self.sample()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self.sample()
            self._stopping.wait(self._interval)

    def sample(self) -> None:
        """Take one sample now."""
        with self._lock:  # stop()'s last sample must not interleave with the thread's
            try:
                self._sample()
            except Exception as exc:  # the API server may be restarting: a gap in the samples
                log.warning("GPU sample skipped: %s", exc)

    def _sample(self) -> None:
        now = time.time()
        state = read_gpu_state(self._core)
        idle = state.idle()
        pending = {p.name: p.gpus for p in state.pods if not p.node}
        self._sink(GpuCapacitySampled(ts=now, idle=format_counts(idle), pending=format_counts(pending),
                                      stranded=stranded(idle, list(pending.values())),
                                      idle_total=sum(idle.values()), preemptions=self._preemptions()))
        self.samples += 1
        self._pod_events(now)

    def _preemptions(self) -> int:
        events = self._core.list_namespaced_event(self._namespace, field_selector="reason=Preempted").items
        self._preempted.update(str(e.involved_object.uid or name_of(e)) for e in events if e.involved_object)
        return len(self._preempted)

    def _pod_events(self, now: float) -> None:
        for pod in self._core.list_namespaced_pod(self._namespace).items:
            gpus = _gpus(pod)
            name = name_of(pod)
            if gpus <= 0:
                continue
            labels = ",".join(f"{k}={v}" for k, v in sorted(labels_of(pod).items()))
            job = labels_of(pod).get("job-name", "")
            created = _ts(meta(pod).creation_timestamp, now)
            if name not in self._created:
                self._created.add(name)
                self._sink(GpuPodCreated(ts=created, pod=name, job=job, gpus=gpus, labels=labels))
            node = (pod.spec.node_name if pod.spec else "") or ""
            if node and name not in self._scheduled:
                self._scheduled.add(name)
                self._sink(GpuPodScheduled(ts=_scheduled_at(pod, now), pod=name, job=job, node=node, gpus=gpus,
                                           created=created, labels=labels))


def _scheduled_at(pod: Any, default: float) -> float:
    conditions = (pod.status.conditions if pod.status else None) or []
    for c in conditions:
        if c.type == "PodScheduled" and c.status == "True":
            return _ts(c.last_transition_time, default)
    return default
