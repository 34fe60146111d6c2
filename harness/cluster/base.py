"""What every cluster backend offers: the records and the protocol.

Every cluster is Kubernetes (DESIGN section 4): the embedded one, kind and an
existing cluster are all driven through the Kubernetes API by one backend, so
Job retries, scheduling, cordon, eviction, PodDisruptionBudgets, PriorityClass
and ResourceQuota are Kubernetes' own. The cluster knows nothing of faults,
checks, workloads or scores.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from harness.errors import HarnessError
from harness.history.events import Event

PodPhase = Literal["Pending", "Running", "Succeeded", "Failed", "Unknown"]
RestartPolicy = Literal["Never", "OnFailure"]

PRIORITY_DAILY = "mlchaos-daily"
PRIORITY_BACKFILL = "mlchaos-backfill"
"""PriorityClasses every backend provides: daily runs preempt and outrank backfills."""

EventSink = Callable[[Event], None]
"""Where a Job's pod lifecycle events and the pipeline's log events go."""


class DrainBlocked(HarnessError):
    """A drain could not evict every pod: a PodDisruptionBudget kept refusing."""


class NodeControlUnsupported(HarnessError):
    """The backend cannot stop, start or re-image a node: the harness does not run the cluster's nodes
    (kind, an existing cluster). Only the embedded cluster's process nodes can."""


class NodeProcesses(Protocol):
    """What runs a cluster's nodes, where the harness runs them (the embedded cluster's node agents).

    ``stop_agent`` makes a node disappear as a terminated instance does (its kubelet stops, what still
    runs there ends); ``start_agent`` brings it back (re-registering the node); ``set_image_env`` makes
    containers started on ``node`` from now on see ``env`` on top of the node's image env (an
    environment-drift fault: a new image digest, other library settings), None restores the image's own.
    """

    def stop_agent(self, name: str) -> None: ...

    def start_agent(self, name: str) -> None: ...

    def set_image_env(self, name: str, env: Mapping[str, str] | None) -> None: ...


@dataclass(frozen=True, kw_only=True)
class JobSpec:
    """A ``batch/v1`` Job with one pod at a time (parallelism 1, completions 1).

    ``image`` "" uses the cluster's pipeline image (process nodes run the
    command in the harness's own Python environment instead). ``metrics_port``
    declares a container port named ``metrics`` that Prometheus scrapes; the
    container finds the port in ``METRICS_PORT``. ``priority_class`` "" leaves
    the cluster's default. CPU and memory are Kubernetes quantities.
    """

    name: str
    command: tuple[str, ...]
    image: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    backoff_limit: int = 6
    restart_policy: RestartPolicy = "Never"
    priority_class: str = ""
    termination_grace_period_seconds: int = 30
    cpu_request: str = ""
    cpu_limit: str = ""
    memory_limit: str = ""
    metrics_port: int | None = None
    gpus: int = 0  # nvidia.com/gpu to request (NVIDIA device plugin; process nodes advertise it, no real GPU)
    node_selector: Mapping[str, str] = field(default_factory=dict)  # added to the cluster's own (pins a pod)


@dataclass(frozen=True, kw_only=True)
class PodInfo:
    """A snapshot of one pod. ``exit_code``/``reason`` describe its container's last end, if any."""

    name: str
    job: str
    node: str  # "" while unscheduled
    phase: PodPhase
    labels: Mapping[str, str]
    restart_count: int = 0
    exit_code: int | None = None
    reason: str = ""
    deleting: bool = False  # a deletion (or eviction) has begun
    gone: bool = False  # the pod object has been removed


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
    pods: int  # capacity in pods
    schedulable: bool
    ready: bool
    running: int  # pods of this run's namespace bound here and not finished


class Cluster(Protocol):
    """The operations the harness needs from any backend."""

    @property
    def kind(self) -> str:
        """``embedded``, ``kind`` or ``existing``."""
        ...

    @property
    def version(self) -> str:
        """The Kubernetes version the cluster's API server reports, e.g. ``v1.20.2``."""
        ...

    def nodes(self) -> list[NodeInfo]: ...

    def submit_job(self, spec: JobSpec, *, sink: EventSink) -> None:
        """Create the Job; its pods' lifecycle events and log events go to ``sink``."""
        ...

    def job_status(self, name: str) -> JobStatus: ...

    def wait_job(self, name: str, *, timeout: float) -> JobStatus:
        """Block until the Job succeeded, failed for good or was deleted, and every event of its
        pods has reached the sink; HarnessError on timeout."""
        ...

    def list_pods(self, *, labels: Mapping[str, str] | None = None) -> list[PodInfo]:
        """Pods whose labels include ``labels``, oldest first (finished ones included)."""
        ...

    def delete_pod(self, name: str, *, grace_period_seconds: float | None = None) -> PodInfo:
        """Delete with a grace period (the pod's own when None; 0 kills at once) and wait until the
        pod is gone; returns it as it ended."""
        ...

    def cordon(self, node: str) -> None: ...

    def uncordon(self, node: str) -> None: ...

    def drain(self, node: str, *, grace_period_seconds: float | None = None) -> list[PodInfo]:
        """Cordon ``node`` and evict the run's pods on it through the Eviction API (PodDisruptionBudgets
        honoured; other namespaces' pods are left alone); waits until they are gone and returns them as
        they ended. DrainBlocked when a budget refuses."""
        ...

    def delete_job(self, name: str) -> None:
        """Delete the Job and its pods (their grace periods honoured); blocks until its pods are gone."""
        ...

    def annotate_pod(self, name: str, annotations: Mapping[str, str | None]) -> dict[str, str]:
        """Set (a value) or remove (None) annotations of pod ``name``; returns its annotations after the
        change (an empty mapping changes nothing and reads them). The fault-control channel to a node
        (:mod:`harness.cluster.fault_control`) is made of these. HarnessError when the pod is gone."""
        ...

    # --- node lifecycle (spot-preemption, environment-drift) -------------------------

    def taint(self, node: str, *, key: str, value: str = "", effect: str = "NoSchedule") -> None:
        """Add taint ``key=value:effect`` to ``node`` (undo record first); a taint already there is left as is
        and not removed later (not this run's)."""
        ...

    def untaint(self, node: str, *, key: str) -> None:
        """Remove taint ``key`` this run added to ``node``; nothing when it added none (idempotent)."""
        ...

    def stop_node(self, node: str) -> None:
        """Make ``node`` disappear: its node agent stops and what still runs there ends.
        NodeControlUnsupported where the harness does not run the nodes (kind, existing)."""
        ...

    def start_node(self, node: str) -> None:
        """Bring back a node :meth:`stop_node` stopped and wait until it is Ready (idempotent).
        NodeControlUnsupported where the harness does not run the nodes."""
        ...

    def set_image_env(self, node: str, env: Mapping[str, str] | None) -> None:
        """Containers started on ``node`` from now on see ``env`` over the image's env (None: the image's
        own again). NodeControlUnsupported where the harness does not run the nodes: there a changed image
        tag on the retried pod would carry the change."""
        ...
