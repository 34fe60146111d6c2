"""crash-points-recovered: every step killed inside a half-done write finished afterwards.

Judged from the history alone. Each ``crash-point`` fault names the pod, the crash point and occurrence it
was aimed at, and whether it was forced. A kill is a *hit* when it was issued while that pod held at that
point (between the point's event and the end of its hold, on the harness's clock); a kill issued later hit
the step somewhere else and proves nothing about the point. A hit step *recovered* when the same run
finished (or skipped, as already done) that step afterwards.

- ``fail``: a step killed at a crash point never finished afterwards (the run could not get past the
  half-done write).
- ``pass``: at least one kill hit its point and every hit step recovered.
- ``unknown``: no crash-point kill, or none hit its point.

That nothing half-written was read or left behind, and that every run id has one model version, are the
duplicate, resume and registry checks' verdicts over the same run; this check reports which points were hit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.checks.verdict import CheckResult, Verdict
from harness.faults.crash_plan import parse_detail
from harness.history.clock import HarnessClock
from harness.history.events import (
    CrashPointReached,
    Event,
    FaultInjected,
    RunStarted,
    StepFinished,
    StepSkipped,
    of_type,
)

NAME = "crash-points-recovered"
FAULT = "crash-point"


@dataclass(frozen=True, kw_only=True)
class CrashOutcome:
    """One crash-point kill as the history shows it."""

    point: str  # <point>#<occurrence>
    pod: str
    step_name: str
    forced: bool
    hit: bool
    recovered: bool

    def describe(self) -> str:
        how = "SIGKILL" if self.forced else "SIGTERM"
        if not self.hit:
            return f"{self.point} ({how}) on {self.pod}: missed (issued after the pod's hold there ended)"
        after = "finished afterwards" if self.recovered else "NEVER finished afterwards"
        return f"{self.point} ({how}) on {self.pod}: hit; step {self.step_name or '?'} {after}"


def crash_outcomes(events: Sequence[Event], *, run_id: str) -> list[CrashOutcome]:
    """Every crash-point kill of ``run_id``'s pods, in the order they were made."""
    evs = list(events)
    clock = HarnessClock(evs)
    step_of = {e.pod: e.step_name for e in of_type(evs, RunStarted) if e.run_id == run_id}
    holds = [e for e in of_type(evs, CrashPointReached) if e.run_id == run_id]
    done = [e for e in evs if isinstance(e, (StepFinished, StepSkipped)) and e.run_id == run_id]
    outcomes = []
    for fault in (f for f in of_type(evs, FaultInjected) if f.fault == FAULT and f.target in step_of):
        parsed = parse_detail(fault.detail)
        if parsed is None:
            continue
        point, occurrence, forced = parsed
        armed = f"{point}#{occurrence}"
        issued = clock.time(fault)
        hit = any(h.pod == fault.target and h.armed == armed
                  and clock.time(h) <= issued <= clock.time(h) + h.pause_seconds for h in holds)
        step_name = step_of[fault.target]
        recovered = any(d.step_name == step_name and d.pod != fault.target and clock.time(d) > issued for d in done)
        outcomes.append(CrashOutcome(point=armed, pod=fault.target, step_name=step_name, forced=forced, hit=hit,
                                     recovered=recovered))
    return outcomes


def check_crash_sweep(events: Sequence[Event], *, run_id: str, weight: float = 1.0) -> CheckResult:
    outcomes = crash_outcomes(events, run_id=run_id)
    lines = [o.describe() for o in outcomes]
    hits = [o for o in outcomes if o.hit]
    stuck = [o for o in hits if not o.recovered]
    if stuck:
        verdict: Verdict
        verdict, summary = "fail", (f"{len(stuck)} of {len(hits)} step(s) killed at a crash point never "
                                          f"finished afterwards: {', '.join(o.point for o in stuck)}")
    elif hits:
        points = sorted({o.point.rpartition('#')[0] for o in hits})
        verdict, summary = "pass", (f"{len(hits)} kill(s) hit their crash point ({', '.join(points)}) and "
                                          f"every killed step finished afterwards")
    elif outcomes:
        verdict, summary = "unknown", f"none of the {len(outcomes)} crash-point kill(s) landed inside its hold"
    else:
        verdict, summary = "unknown", "no crash-point kill in this run: nothing to judge"
    return CheckResult(name=NAME, verdict=verdict, weight=weight, evidence=(summary, *lines))
