"""Hand-built histories for the checks: a training run, interrupted as told."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.evidence.reference import ReferenceRun
from harness.history.events import (
    CheckpointRestored,
    CheckpointSaved,
    Event,
    ExperimentEnded,
    FaultHealed,
    FaultInjected,
    PodExited,
    PodStarted,
    SigtermReceived,
    TrainingCompleted,
    TrainingStarted,
    TrainStep,
)

RUN = "exp-1"
JOB = f"{RUN}-train"
SHA = "a" * 64


@dataclass
class TrainingHistory:
    """Builds events for attempts of one training job, one step per 0.1 s."""

    checkpoint_every: int = 10
    events: list[Event] = field(default_factory=list)
    now: float = 1000.0
    attempt: int = -1
    fault_count: int = 0
    last_step: int = 0

    @property
    def pod(self) -> str:
        return f"{JOB}-{self.attempt}"

    def _tick(self, dt: float = 0.1) -> float:
        self.now += dt
        return self.now

    def start_attempt(self, *, restore: int | None) -> TrainingHistory:
        self.attempt += 1
        p = dict(pod=self.pod, job=JOB, attempt=self.attempt)
        self.events.append(PodStarted(ts=self._tick(), node="node-a", pid=100 + self.attempt, **p))
        if restore is not None:
            self.events.append(CheckpointRestored(ts=self._tick(), run_id=RUN, step=restore,
                                                  manifest_key=f"ck/{restore}", seconds=0.01, **p))
        self.events.append(TrainingStarted(ts=self._tick(), run_id=RUN, start_step=restore or 0, total_steps=100,
                                           checkpoint_every=self.checkpoint_every, seed=7, device="cpu", **p))
        return self

    def train(self, first: int, last: int, *, checkpoints: bool = True) -> TrainingHistory:
        p = dict(pod=self.pod, job=JOB, attempt=self.attempt)
        for step in range(first, last + 1):
            self.events.append(TrainStep(ts=self._tick(), run_id=RUN, step=step, loss=1.0 / step, **p))
            self.last_step = step
            if checkpoints and step % self.checkpoint_every == 0:
                self.checkpoint(step, reason="periodic")
        return self

    def checkpoint(self, step: int, *, reason: str) -> TrainingHistory:
        p = dict(pod=self.pod, job=JOB, attempt=self.attempt)
        self.events.append(CheckpointSaved(ts=self._tick(0.01), run_id=RUN, step=step, manifest_key=f"ck/{step}",
                                           seconds=0.01, bytes=1000, reason=reason, **p))
        return self

    def kill(self, *, grace: float, exit_code: int) -> TrainingHistory:
        self.fault_count += 1
        p = dict(pod=self.pod, job=JOB, attempt=self.attempt)
        fid = f"pod-delete-{self.fault_count}"
        self.events.append(FaultInjected(ts=self._tick(), fault="pod-delete", fault_id=fid, target=self.pod,
                                         detail="deleted", grace_period_seconds=grace, **p))
        if grace > 0:  # the pipeline reports the SIGTERM it got
            self.events.append(SigtermReceived(ts=self._tick(0.01), run_id=RUN, step=self.last_step, **p))
        return self

    def exited(self, exit_code: int) -> TrainingHistory:
        p = dict(pod=self.pod, job=JOB, attempt=self.attempt)
        self.events.append(PodExited(ts=self._tick(), node="node-a", exit_code=exit_code, reason="Deleted", **p))
        self.events.append(FaultHealed(ts=self._tick(), fault="pod-delete", fault_id=f"pod-delete-{self.fault_count}",
                                       detail="gone", **p))
        return self

    def complete(self, sha: str = SHA) -> TrainingHistory:
        p = dict(pod=self.pod, job=JOB, attempt=self.attempt)
        self.events.append(TrainingCompleted(ts=self._tick(), run_id=RUN, step=100, params_sha256=sha, **p))
        self.events.append(PodExited(ts=self._tick(), node="node-a", exit_code=0, reason="Completed", **p))
        return self

    def end(self, *, status: str = "completed", deviated: bool = False) -> list[Event]:
        self.events.append(ExperimentEnded(ts=self._tick(), experiment="pod-delete", status=status, deviated=deviated))
        return self.events


def graceful_then_forced(*, restore_after_kill: int | None = 40, sha: str = SHA) -> list[Event]:
    """SIGTERM at step 25 (checkpoint 25, nothing lost), then SIGKILL at step 47 (restore 40, 7 lost)."""
    h = TrainingHistory()
    h.start_attempt(restore=None).train(1, 25).kill(grace=30, exit_code=143)
    h.checkpoint(25, reason="sigterm").exited(143)
    h.start_attempt(restore=25).train(26, 47).kill(grace=0, exit_code=137).exited(137)
    h.start_attempt(restore=restore_after_kill).train((restore_after_kill or 0) + 1, 100).complete(sha)
    return h.end()


def reference(sha: str | None = SHA) -> ReferenceRun | None:
    """The uninterrupted run a resume is measured against (None: there is none)."""
    return None if sha is None else ReferenceRun(params_sha256=sha)
