"""``preemption-checkpointed``: a spot termination notice is used to checkpoint, so no work is lost.

For every ``spot-preemption`` fault that hit a training attempt (the notice window is the fault's
``grace_period_seconds``; it ends ``notice`` seconds after the ``FaultInjected``, on the harness's clock):

- pass when the attempt saved a checkpoint with reason ``sigterm`` before the window ended and the
  next attempt restored exactly that step (0 steps lost);
- when the window was shorter than a checkpoint save takes (the longest ``CheckpointSaved.seconds``
  of the run), no pipeline could save inside it: the steps lost are reported, and the fault passes
  only if they are at most one checkpoint interval (what periodic checkpoints alone guarantee);
- fail when the window was long enough but no ``sigterm`` checkpoint was saved inside it, or the next
  attempt did not restore the one saved (the steps lost are reported);
- ``unknown`` when no spot-preemption fault is in the history, when it hit no training attempt, when
  no later attempt started (the resume check judges a run that never resumed), or when no save was
  ever measured and none was made on the notice.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.checks.interruptions import FaultOutcome, fault_outcomes
from harness.checks.verdict import CheckResult, Verdict, worst
from harness.history.clock import HarnessClock
from harness.history.events import CheckpointSaved, Event, FaultInjected, PodStarted, of_type

NAME = "preemption-checkpointed"
FAULT = "spot-preemption"  # harness.faults.spot_preemption.NAME (checks do not import faults)


def check_preemption(events: Sequence[Event], *, weight: float = 1.0) -> CheckResult:
    """Judge every spot-preemption fault in ``events`` as the module says; the worst verdict wins."""
    history = list(events)
    faults = {f.fault_id: f for f in of_type(history, FaultInjected) if f.fault == FAULT}
    if not faults:
        return CheckResult(name=NAME, verdict="unknown", weight=weight,
                           evidence=(f"no {FAULT} fault in the history: nothing to judge",))
    clock = HarnessClock(history)
    saves = of_type(history, CheckpointSaved)
    save_seconds = max((s.seconds for s in saves), default=None)
    verdicts: list[Verdict] = []
    evidence: list[str] = []
    for outcome in fault_outcomes(history):
        if outcome.fault_id in faults:
            verdict, line = _judge(faults[outcome.fault_id], outcome, history, clock, save_seconds)
            verdicts.append(verdict)
            evidence.append(line)
    return CheckResult(name=NAME, verdict=worst(verdicts), evidence=tuple(evidence), weight=weight)


def _judge(fault: FaultInjected, outcome: FaultOutcome, history: list[Event], clock: HarnessClock,
           save_seconds: float | None) -> tuple[Verdict, str]:
    head = f"{fault.fault_id} on {fault.target}"
    if not outcome.hit_training:
        return "unknown", f"{head}: it hit no training attempt (the pod had no training under way)"
    notice = fault.grace_period_seconds
    if notice < 0:
        return "unknown", f"{head}: the fault did not record its notice window"
    window_end = fault.ts + notice
    started = [e for e in of_type(history, PodStarted) if e.pod == fault.pod and e.ts <= fault.ts]
    attempt = started[-1].attempt if started else None
    in_window = [s for s in of_type(history, CheckpointSaved)
                 if s.pod == fault.pod and s.attempt == attempt and s.reason == "sigterm"
                 and clock.time(s) <= window_end]
    if not outcome.resumed_pod:
        return "unknown", f"{head}: no later attempt of the training job started, so no resume to judge"
    resumed_on = next((e.node for e in of_type(history, PodStarted) if e.pod == outcome.resumed_pod), "?")
    lost = outcome.steps_lost if outcome.steps_lost is not None else 0
    where = (f"notice {notice:g} s; last step {outcome.last_step_before}; resumed on {resumed_on} from step "
             f"{outcome.restored_step if outcome.restored_step is not None else 0}; {lost} step(s) lost")
    if in_window:
        saved = in_window[-1]
        if outcome.restored_step == saved.step and lost == 0:
            return "pass", (f"{head}: checkpointed step {saved.step} on the notice "
                            f"({clock.time(saved) - fault.ts:.1f} s into the window); {where}")
        return "fail", (f"{head}: checkpointed step {saved.step} on the notice, but the next attempt did not "
                        f"resume it; {where}")
    if save_seconds is not None and notice < save_seconds:
        interval = outcome.checkpoint_every
        verdict: Verdict = "pass" if interval is not None and lost <= interval else "fail"
        return verdict, (f"{head}: the window was shorter than a checkpoint save ({save_seconds:.2f} s), so "
                         f"nothing could be saved in it; {where} (allowed: one checkpoint interval, {interval})")
    if save_seconds is None:
        return "unknown", (f"{head}: no checkpoint save was ever measured, so whether the window was long "
                           f"enough is not known; {where}")
    return "fail", (f"{head}: no checkpoint saved on the notice although the window was long enough "
                    f"(a save takes {save_seconds:.2f} s); {where}")
