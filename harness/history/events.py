"""Typed records of everything that happened during a run.

The history is the single record the checks read (DESIGN section 2). Each line of
the JSONL file is one event: ``{"event": <kind>, "ts": <unix seconds>, ...fields}``.

Pipeline events are printed by the workload on stdout (the workload contract,
DESIGN section 5); the cluster layer adds ``pod``, ``job`` and ``attempt`` when it
collects them. Harness events (pods, faults, experiments) are written by the
harness itself. A line whose kind is not known here is kept as ``UnknownEvent``,
so a newer pipeline never breaks an older harness.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of all events. ``pod``/``job``/``attempt`` name the container attempt
    that printed a pipeline event; they are empty for harness events.

    ``ts`` is the time the event's source stamped (the pod's clock for pipeline
    events); ``received`` is the harness's clock when the harness read a pipeline
    event, and 0 for events the harness stamped itself. Compare events from
    different sources with :class:`harness.history.clock.HarnessClock`."""

    KIND: ClassVar[str] = ""
    ts: float
    pod: str = ""
    job: str = ""
    attempt: int = 0
    received: float = 0.0


# --- pipeline events (printed by the workload) -------------------------------


@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    """A pipeline step process started working on a run."""

    KIND: ClassVar[str] = "run_started"
    pipeline: str
    run_id: str
    date: str
    kind: str  # "daily" or "backfill"
    step_name: str


@dataclass(frozen=True, kw_only=True)
class StepFinished(Event):
    """A pipeline step process finished its work (or skipped it) successfully."""

    KIND: ClassVar[str] = "step_finished"
    run_id: str
    step_name: str
    seconds: float


@dataclass(frozen=True, kw_only=True)
class StepSkipped(Event):
    """A step found its output already published and exited early (idempotent skip)."""

    KIND: ClassVar[str] = "step_skipped"
    run_id: str
    step_name: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class TrainingStarted(Event):
    """Training began (or resumed) in this attempt, at ``start_step``."""

    KIND: ClassVar[str] = "training_started"
    run_id: str
    start_step: int
    total_steps: int
    checkpoint_every: int
    seed: int
    device: str


@dataclass(frozen=True, kw_only=True)
class TrainStep(Event):
    """``step`` optimizer steps are complete (1-based)."""

    KIND: ClassVar[str] = "train_step"
    run_id: str
    step: int
    loss: float


@dataclass(frozen=True, kw_only=True)
class CheckpointSaved(Event):
    """The checkpoint of ``step`` is complete: its manifest exists at ``manifest_key``."""

    KIND: ClassVar[str] = "checkpoint_saved"
    run_id: str
    step: int
    manifest_key: str
    seconds: float
    bytes: int
    reason: str  # "periodic", "sigterm" or "final"
    # A sha256 per state component saved (parameters, optimizer, scheduler, rng_torch, rng_numpy,
    # rng_python, rng_cuda, data_position, ...): what a restore must bring back exactly.
    components: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class CheckpointRestored(Event):
    """Training restored the checkpoint of ``step`` from ``manifest_key``."""

    KIND: ClassVar[str] = "checkpoint_restored"
    run_id: str
    step: int
    manifest_key: str
    seconds: float
    components: Mapping[str, str] = field(default_factory=dict)  # the digests of the state as loaded


@dataclass(frozen=True, kw_only=True)
class CheckpointRejected(Event):
    """A restore skipped the checkpoint at ``manifest_key``: its state failed verification (``reason``)."""

    KIND: ClassVar[str] = "checkpoint_rejected"
    run_id: str
    step: int
    manifest_key: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class DigestTrail(Event):
    """The training state's digests after ``step`` (every N steps): where a resumed run
    departs from the uninterrupted one."""

    KIND: ClassVar[str] = "digest_trail"
    run_id: str
    step: int
    components: Mapping[str, str]


@dataclass(frozen=True, kw_only=True)
class EnvironmentReported(Event):
    """A step process's environment: ``fingerprint`` hashes ``details`` (library versions,
    device, determinism settings, image)."""

    KIND: ClassVar[str] = "environment"
    run_id: str
    fingerprint: str
    details: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class EnvironmentRefused(Event):
    """Training refused to resume a checkpoint written under another environment (``differing``: the
    fingerprint details that differ, comma-separated); the attempt then fails."""

    KIND: ClassVar[str] = "environment_refused"
    run_id: str
    step: int
    fingerprint: str
    checkpoint_fingerprint: str
    differing: str


@dataclass(frozen=True, kw_only=True)
class CrashPointReached(Event):
    """A process armed for a crash-point sweep reached ``point`` for the ``occurrence``-th time and
    holds there ``pause_seconds``, so a kill can land inside the half-done write."""

    KIND: ClassVar[str] = "crash_point"
    run_id: str
    point: str
    occurrence: int
    pause_seconds: float

    @property
    def armed(self) -> str:
        """``<point>#<occurrence>``, as the harness arms it."""
        return f"{self.point}#{self.occurrence}"


@dataclass(frozen=True, kw_only=True)
class SigtermReceived(Event):
    """The process received SIGTERM while training at ``step``."""

    KIND: ClassVar[str] = "sigterm_received"
    run_id: str
    step: int


@dataclass(frozen=True, kw_only=True)
class TrainingCompleted(Event):
    """Training reached its last step; ``params_sha256`` hashes the final parameters."""

    KIND: ClassVar[str] = "training_completed"
    run_id: str
    step: int
    params_sha256: str


@dataclass(frozen=True, kw_only=True)
class ArtifactWritten(Event):
    """An artifact was published under ``key``; ``logical_id`` names what it is,
    independent of the attempt that wrote it (for the duplicate check)."""

    KIND: ClassVar[str] = "artifact_written"
    run_id: str
    artifact: str  # "raw_part", "feature_partition", "checkpoint", "model", "evaluation", "model_version"
    key: str
    logical_id: str


@dataclass(frozen=True, kw_only=True)
class Evaluated(Event):
    """The evaluation step measured ``metric`` against its gate."""

    KIND: ClassVar[str] = "evaluated"
    run_id: str
    metric: str
    value: float
    threshold: float
    passed: bool


@dataclass(frozen=True, kw_only=True)
class ModelRegistered(Event):
    """The registry holds ``version`` for ``run_id`` (new or found on retry)."""

    KIND: ClassVar[str] = "model_registered"
    run_id: str
    version: int
    created: bool


@dataclass(frozen=True, kw_only=True)
class AliasMoved(Event):
    """One attempt to move registry alias ``alias`` from ``from_version`` (0: absent) to ``to_version``,
    conditioned on ``etag_expected`` (the ETag read before it); ``etag_written`` is the new object's ETag
    ("" when refused), ``ok`` whether the write landed (registry-linearizable's history)."""

    KIND: ClassVar[str] = "alias_moved"
    run_id: str
    alias: str
    from_version: int
    to_version: int
    etag_expected: str
    etag_written: str
    ok: bool


@dataclass(frozen=True, kw_only=True)
class InputsRead(Event):
    """A step read ``keys`` as its ``role`` input ("raw", "features", "holdout", "model") of partition
    ``date`` and ``data_version`` ("" when the pipeline has none): the run's lineage, judged by the
    ``lineage`` and ``no-training-on-partial-data`` checks."""

    KIND: ClassVar[str] = "inputs_read"
    run_id: str
    step_name: str
    role: str
    date: str
    data_version: str
    keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", tuple(self.keys))  # JSON gives a list; keep the record hashable


@dataclass(frozen=True, kw_only=True)
class InputsWaiting(Event):
    """A sensor waits for inputs of ``date`` that have not landed yet (``missing`` names them)."""

    KIND: ClassVar[str] = "inputs_waiting"
    run_id: str
    step_name: str
    date: str
    missing: tuple[str, ...] = ()
    waited_seconds: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "missing", tuple(self.missing))


# --- harness events ----------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PodStarted(Event):
    """The cluster started a container attempt of ``pod`` on ``node``."""

    KIND: ClassVar[str] = "pod_started"
    node: str
    pid: int
    labels: str = ""  # the pod's labels as a selector, "k=v,k=v"


@dataclass(frozen=True, kw_only=True)
class PodExited(Event):
    """A container attempt ended; ``exit_code`` follows Kubernetes (143 SIGTERM, 137 SIGKILL)."""

    KIND: ClassVar[str] = "pod_exited"
    node: str
    exit_code: int
    reason: str  # "Completed", "Error", "Deleted", "Evicted"


@dataclass(frozen=True, kw_only=True)
class JobFinished(Event):
    """A Job reached a terminal condition."""

    KIND: ClassVar[str] = "job_finished"
    succeeded: bool
    failures: int


@dataclass(frozen=True, kw_only=True)
class FaultInjected(Event):
    """A fault acted. ``target`` names what it hit; ``detail`` says exactly what it did."""

    KIND: ClassVar[str] = "fault_injected"
    fault: str
    fault_id: str
    target: str
    detail: str
    grace_period_seconds: float = -1.0


@dataclass(frozen=True, kw_only=True)
class FaultHealed(Event):
    """The fault ``fault_id`` has been undone (or has finished acting)."""

    KIND: ClassVar[str] = "fault_healed"
    fault: str
    fault_id: str
    detail: str


@dataclass(frozen=True, kw_only=True)
class GpuCapacitySampled(Event):
    """Kubernetes' GPU scheduling state at ``ts`` (gpu-fragmentation family).

    ``idle``: idle ``nvidia.com/gpu`` per schedulable Ready node, ``"node=n,..."``;
    ``pending``: GPU requests of unscheduled pods, ``"pod=n,..."``; ``stranded``: idle
    GPUs on nodes where no pending request fits (0 while nothing is pending);
    ``preemptions``: pods the scheduler preempted in the run's namespace so far."""

    KIND: ClassVar[str] = "gpu_capacity_sampled"
    idle: str
    pending: str
    stranded: int
    idle_total: int
    preemptions: int = 0


@dataclass(frozen=True, kw_only=True)
class GpuPodScheduled(Event):
    """A pod requesting ``gpus`` GPUs, created at ``created``, was bound to ``node`` at ``ts``
    (its PodScheduled condition); ``labels`` as a selector ``"k=v,k=v"``."""

    KIND: ClassVar[str] = "gpu_pod_scheduled"
    node: str
    gpus: int
    created: float
    labels: str = ""


@dataclass(frozen=True, kw_only=True)
class GpuPodCreated(Event):
    """A pod requesting ``gpus`` GPUs was created at ``ts`` (first seen by the GPU sampler)."""

    KIND: ClassVar[str] = "gpu_pod_created"
    gpus: int
    labels: str = ""


@dataclass(frozen=True, kw_only=True)
class ExperimentStarted(Event):
    KIND: ClassVar[str] = "experiment_started"
    experiment: str
    run_id: str


@dataclass(frozen=True, kw_only=True)
class ExperimentEnded(Event):
    KIND: ClassVar[str] = "experiment_ended"
    experiment: str
    status: str
    deviated: bool


@dataclass(frozen=True, kw_only=True)
class UnknownEvent(Event):
    """A line whose kind this harness does not know; kept verbatim."""

    KIND: ClassVar[str] = "unknown"
    name: str
    raw: str


EVENT_TYPES: dict[str, type[Event]] = {
    cls.KIND: cls
    for cls in (
        RunStarted,
        StepFinished,
        StepSkipped,
        TrainingStarted,
        TrainStep,
        CheckpointSaved,
        CheckpointRestored,
        CheckpointRejected,
        DigestTrail,
        EnvironmentReported,
        EnvironmentRefused,
        CrashPointReached,
        SigtermReceived,
        TrainingCompleted,
        ArtifactWritten,
        Evaluated,
        ModelRegistered,
        InputsRead,
        InputsWaiting,
        AliasMoved,
        PodStarted,
        PodExited,
        JobFinished,
        FaultInjected,
        FaultHealed,
        ExperimentStarted,
        ExperimentEnded,
        GpuCapacitySampled,
        GpuPodScheduled,
        GpuPodCreated,
    )
}

E = TypeVar("E", bound=Event)


def to_json(event: Event) -> str:
    """One JSONL line (without newline) for ``event``."""
    fields = dataclasses.asdict(event)
    return json.dumps({"event": event.KIND, **fields}, sort_keys=True)


def from_json(
    line: str, *, pod: str | None = None, job: str | None = None, attempt: int | None = None, now: float = 0.0,
    received: float | None = None,
) -> Event | None:
    """Parse one line. Returns ``None`` when the line is not a JSON event object.

    ``pod``/``job``/``attempt`` override what the line says (the collector knows
    better than the workload which container printed it); ``now`` fills a missing ``ts``;
    ``received`` is when the harness read the line (on its own clock).
    Unknown kinds and lines whose fields do not fit their kind become ``UnknownEvent``.
    """
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("event"), str):
        return None
    name = obj.pop("event")
    source = {k: v for k, v in (("pod", pod), ("job", job), ("attempt", attempt), ("received", received))
              if v is not None}
    obj.update(source)
    obj.setdefault("ts", now)
    cls = EVENT_TYPES.get(name)
    if cls is not None:
        names = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in obj.items() if k in names})
        except TypeError:
            pass
    base = {k: obj[k] for k in ("ts", "pod", "job", "attempt", "received") if k in obj}
    return UnknownEvent(name=name, raw=line.strip(), **base)


def of_type(events: list[Event], cls: type[E]) -> list[E]:
    """The events of one type, in history order."""
    return [e for e in events if isinstance(e, cls)]
