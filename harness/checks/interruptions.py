"""What each fault did to training, read from the history alone.

For every injected fault this finds the training attempt it hit (if any; an attempt that completed
training, before or after the fault, is not one), the latest complete checkpoint that existed when that
attempt ended, what the next attempt restored, how many steps were lost and how long training took to make
progress again. Both the resume check and the report use these figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.history.clock import HarnessClock
from harness.history.events import (
    CheckpointRestored,
    CheckpointSaved,
    Event,
    FaultHealed,
    FaultInjected,
    PodExited,
    PodStarted,
    SigtermReceived,
    TrainingCompleted,
    TrainingStarted,
    TrainStep,
    of_type,
)

SIGKILL_EXIT = 137


@dataclass(frozen=True, kw_only=True)
class FaultOutcome:
    """One fault and its effect on training.

    ``hit_training`` is false for faults that did not end a training attempt;
    the other training figures are then ``None``. ``resumed_pod`` is ``""`` when
    no later attempt of the job ever started.
    """

    fault: str
    fault_id: str
    target: str
    injected_at: float
    healed_at: float | None
    hit_training: bool
    graceful: bool  # the attempt saved a checkpoint after its SIGTERM, then ended on its own
    exit_code: int | None
    last_step_before: int | None
    latest_checkpoint: int | None  # latest complete checkpoint when the attempt ended
    grace_period_seconds: float = -1.0  # what the fault gave the pod (-1: not said)
    sigterm_step: int | None = None  # the step the attempt reported SIGTERM at, if it did
    latest_checkpoint_key: str = ""  # the manifest key of ``latest_checkpoint``
    resumed_pod: str
    restored_step: int | None  # None: the next attempt restored nothing (started from 0)
    restored_key: str
    steps_lost: int | None
    recovery_seconds: float | None  # fault injected -> first new training step, on the harness's clock
    checkpoint_every: int | None
    clock: str = HarnessClock.NAME  # which clock times were compared on, with how far the pods' clocks were


def fault_outcomes(events: Sequence[Event]) -> list[FaultOutcome]:
    """One outcome per ``FaultInjected`` event, in injection order."""
    healed = {e.fault_id: e.ts for e in of_type(list(events), FaultHealed)}
    clock = HarnessClock(events)
    return [_outcome(f, events, healed.get(f.fault_id), clock) for f in of_type(list(events), FaultInjected)]


def _outcome(fault: FaultInjected, events: Sequence[Event], healed_at: float | None,
             clock: HarnessClock) -> FaultOutcome:
    pod = fault.pod or fault.target
    # The attempt the fault hit: the pod's latest container attempt started before the fault.
    hit = [e for e in of_type(list(events), PodStarted) if e.pod == pod and e.ts <= fault.ts]
    attempt = hit[-1].attempt if hit else None
    started = [e for e in of_type(list(events), TrainingStarted) if e.pod == pod and e.attempt == attempt]
    exits = [e for e in of_type(list(events), PodExited) if e.pod == pod and e.attempt == attempt]
    # An attempt that completed training lost none, whether the fault came while it was publishing or
    # during its last step (a SIGTERM lets it finish and report).
    trained_out = any(e.pod == pod and e.attempt == attempt for e in of_type(list(events), TrainingCompleted))
    if not started or not exits or trained_out:
        return FaultOutcome(
            fault=fault.fault, fault_id=fault.fault_id, target=fault.target, injected_at=fault.ts,
            healed_at=healed_at, clock=clock.describe(), grace_period_seconds=fault.grace_period_seconds,
            hit_training=False,
            graceful=False,
            exit_code=exits[0].exit_code if exits else None,
            last_step_before=None,
            latest_checkpoint=None,
            resumed_pod="",
            restored_step=None,
            restored_key="",
            steps_lost=None,
            recovery_seconds=None,
            checkpoint_every=None,
        )
    run_id = started[0].run_id
    ended = exits[0]
    steps = [e.step for e in of_type(list(events), TrainStep) if e.pod == pod and e.attempt == attempt]
    last_step = max(steps, default=started[0].start_step)
    saved = [e for e in of_type(list(events), CheckpointSaved) if e.run_id == run_id and clock.time(e) <= ended.ts]
    latest_saved = max(saved, key=lambda e: e.step, default=None)
    latest = latest_saved.step if latest_saved is not None else None

    def of_hit(e: Event) -> bool:
        return e.pod == pod and e.attempt == attempt

    sigterms = [e for e in of_type(list(events), SigtermReceived) if of_hit(e)]
    # Graceful: a checkpoint of this attempt saved after it was told to stop (both on the pod's clock) and
    # before the attempt ended (on the harness's clock, as ``saved`` above), then its own exit.
    saved_after_sigterm = bool(sigterms) and any(
        of_hit(e) and e.ts >= sigterms[0].ts and clock.time(e) <= ended.ts
        for e in of_type(list(events), CheckpointSaved))
    job = started[0].job
    # Attempts are numbered per Job in the order they started. A replacement pod may start while the
    # hit one is still terminating (Kubernetes replaces a deleted pod at once), so order by number.
    later = [e for e in of_type(list(events), PodStarted)
             if e.job == job and attempt is not None and e.attempt > attempt]
    resumed = later[0] if later else None

    def of_resumed(e: Event) -> bool:
        return resumed is not None and e.pod == resumed.pod and e.attempt == resumed.attempt

    restored = [e for e in of_type(list(events), CheckpointRestored) if of_resumed(e)]
    restored_step = restored[0].step if restored else None
    first_step = [clock.time(e) for e in of_type(list(events), TrainStep) if of_resumed(e)]
    return FaultOutcome(
        fault=fault.fault, fault_id=fault.fault_id, target=fault.target, injected_at=fault.ts,
        healed_at=healed_at, clock=clock.describe(), grace_period_seconds=fault.grace_period_seconds,
        hit_training=True,
        graceful=ended.exit_code != SIGKILL_EXIT and saved_after_sigterm,
        exit_code=ended.exit_code,
        last_step_before=last_step,
        latest_checkpoint=latest,
        sigterm_step=sigterms[0].step if sigterms else None,
        latest_checkpoint_key=latest_saved.manifest_key if latest_saved is not None else "",
        resumed_pod=resumed.pod if resumed else "",
        restored_step=restored_step,
        restored_key=restored[0].manifest_key if restored else "",
        steps_lost=max(0, last_step - (restored_step or 0)) if resumed else None,
        recovery_seconds=(first_step[0] - fault.ts) if first_step else None,
        checkpoint_every=started[0].checkpoint_every,
    )

