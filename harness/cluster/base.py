"""What every cluster backend offers: the records and the protocol.

Kubernetes semantics are the reference (pods, Jobs, nodes, grace periods); the
embedded process cluster, kind and an existing cluster all implement ``Cluster``.
The cluster knows nothing of faults, checks or scores.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from harness.history.events import Event

PodPhase = Literal["Pending", "Running", "Succeeded", "Failed"]

EventSink = Callable[[Event], None]
"""Where a job's pod lifecycle events and the pipeline's stdout events go."""


@dataclass(frozen=True, kw_only=True)
class JobSpec:
    """A Kubernetes-like Job: one pod at a time, restarted on failure.

    ``backoff_base_seconds``/``backoff_max_seconds`` default to Kubernetes' 10 s
    doubling up to 6 min; the embedded cluster's experiments set them lower.
    """

    name: str
    command: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    backoff_limit: int = 6
    backoff_base_seconds: float = 10.0
    backoff_max_seconds: float = 360.0
    priority: int = 0
    termination_grace_period_seconds: float = 30.0
    expose_metrics: bool = False
    cpu_nice: int = 0  # lower CPU share for the pods (0-19), as a smaller CPU request would give them
    cpu_limit: float | None = None  # cores, as resources.limits.cpu (a CFS quota where cgroups are writable)


@dataclass(frozen=True, kw_only=True)
class PodInfo:
    """A snapshot of one pod (one container attempt of a Job)."""

    name: str
    job: str
    attempt: int
    node: str  # "" while Pending
    phase: PodPhase
    labels: Mapping[str, str]
    pid: int = 0
    exit_code: int | None = None
    reason: str = ""
    metrics_endpoint: str = ""  # "127.0.0.1:PORT" when the job exposes metrics


@dataclass(frozen=True, kw_only=True)
class JobStatus:
    name: str
    active: int
    failed: int
    succeeded: bool
    finished: bool


@dataclass(frozen=True, kw_only=True)
class NodeInfo:
    name: str
    slots: int
    schedulable: bool
    running: int


class Cluster(Protocol):
    """The operations the harness needs from any backend."""

    def nodes(self) -> list[NodeInfo]: ...

    def submit_job(self, spec: JobSpec, *, sink: EventSink) -> None:
        """Create the Job; its pods are scheduled as slots allow."""
        ...

    def job_status(self, name: str) -> JobStatus: ...

    def wait_job(self, name: str, *, timeout: float) -> JobStatus:
        """Block until the Job succeeds or fails for good; raise HarnessError on timeout."""
        ...

    def list_pods(self, *, labels: Mapping[str, str] | None = None) -> list[PodInfo]:
        """Pods whose labels include ``labels``, oldest first."""
        ...

    def delete_pod(self, name: str, *, grace_period_seconds: float | None = None) -> PodInfo:
        """SIGTERM, wait the grace period (the pod's own when None), then SIGKILL.

        Returns the pod as it ended. ``0`` kills at once, as ``kubectl delete --grace-period=0 --force``.
        """
        ...

    def cordon(self, node: str) -> None: ...

    def uncordon(self, node: str) -> None: ...

    def drain(self, node: str, *, grace_period_seconds: float | None = None) -> list[PodInfo]:
        """Cordon ``node`` and evict its running pods (graceful); their Jobs reschedule them elsewhere."""
        ...

    def delete_job(self, name: str) -> None:
        """Stop the Job: no new pods; running pods are deleted with their grace period."""
        ...

    def endpoint(self, service: str) -> str:
        """URL of a dependency the cluster serves: ``"s3"`` or ``"prometheus"``."""
        ...
