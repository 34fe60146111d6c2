"""``straggler-detected``: a slowed training pod shows up as a measured step-time slowdown, attributed to the
pod and node the fault slowed.

For every ``straggler`` fault in the history (its window runs from its ``FaultInjected`` to its
``FaultHealed``, on the harness's clock) this measures the run's seconds per training step:

- *before*: over the run's steps reported before the window (the run's own pre-fault pace);
- *during*: over the steps reported inside the window.

``factor`` = during / before. Step times come from the history's ``train_step`` events (each stamped by the
pod that made the step, put on the harness's clock), not from Prometheus: checks receive no Prometheus data
(the experiment's SLOs query it; ``experiments/straggler.yaml`` declares one over the same step counter).

Verdicts: ``pass`` when ``factor >= min_factor`` and the steps inside the window were made by the pod the
fault named, on the node it named (the slowdown is measured and attributed; both are in the evidence);
``fail`` when the factor stayed below ``min_factor`` (the straggler went unseen: the slowdown did not show,
or did not last) or the slow steps came from another pod than the one named; ``unknown`` when no straggler
fault is in the history, or fewer than two steps were reported before or inside its window (nothing to
measure: the fault hit no training under way).
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.checks.verdict import CheckResult, Verdict, worst
from harness.history.clock import HarnessClock
from harness.history.events import Event, FaultHealed, FaultInjected, PodStarted, TrainStep, of_type

__all__ = ["NAME", "FAULT", "DEFAULT_MIN_FACTOR", "check_straggler", "seconds_per_step"]

NAME = "straggler-detected"
FAULT = "straggler"  # harness.faults.straggler.NAME (checks do not import faults)
DEFAULT_MIN_FACTOR = 2.0


def seconds_per_step(times: Sequence[float]) -> float | None:
    """Mean seconds between consecutive steps reported at ``times`` (sorted); None for fewer than two."""
    if len(times) < 2:
        return None
    return (times[-1] - times[0]) / (len(times) - 1)


def check_straggler(events: Sequence[Event], *, run_id: str, min_factor: float = DEFAULT_MIN_FACTOR,
                    weight: float = 1.0) -> CheckResult:
    """Judge every straggler fault in ``events`` as the module says; the worst verdict wins."""
    history = list(events)
    faults = [f for f in of_type(history, FaultInjected) if f.fault == FAULT]
    if not faults:
        return CheckResult(name=NAME, verdict="unknown", weight=weight,
                           evidence=(f"no {FAULT} fault in the history: nothing to judge",))
    clock = HarnessClock(history)
    steps = sorted(((clock.time(s), s) for s in of_type(history, TrainStep) if s.run_id == run_id),
                   key=lambda pair: pair[0])
    verdicts: list[Verdict] = []
    evidence: list[str] = []
    for fault in faults:
        healed = next((h for h in of_type(history, FaultHealed) if h.fault_id == fault.fault_id), None)
        end = clock.time(healed) if healed is not None else (steps[-1][0] if steps else fault.ts)
        verdict, line = _judge(fault, end, steps, history, min_factor)
        verdicts.append(verdict)
        evidence.append(line)
    return CheckResult(name=NAME, verdict=worst(verdicts), evidence=tuple(evidence), weight=weight)


def _judge(fault: FaultInjected, end: float, steps: list[tuple[float, TrainStep]], history: list[Event],
           min_factor: float) -> tuple[Verdict, str]:
    head = f"{fault.fault_id} on {fault.target}"
    start = fault.ts
    before = [t for t, _ in steps if t < start]
    inside = [(t, s) for t, s in steps if start <= t <= end]
    pace_before = seconds_per_step(before)
    pace_inside = seconds_per_step([t for t, _ in inside])
    if pace_before is None or pace_inside is None or pace_before <= 0:
        return "unknown", (f"{head}: {len(before)} step(s) before and {len(inside)} inside the "
                           f"{end - start:.1f} s window: too few to measure a step time")
    factor = pace_inside / pace_before
    pods = sorted({s.pod for _, s in inside})
    nodes = sorted({e.node for e in of_type(history, PodStarted) if e.pod in pods})
    measured = (f"{pace_inside:.3f} s/step inside the {end - start:.1f} s window vs {pace_before:.3f} s/step "
                f"before: slowdown x{factor:.1f} (needed x{min_factor:g}); steps inside by pod(s) "
                f"{', '.join(pods)} on node(s) {', '.join(nodes) or '?'}")
    if factor < min_factor:
        return "fail", f"{head}: the straggler went unseen: {measured}"
    if pods != [fault.pod]:
        return "fail", f"{head}: slowdown measured but not attributed to the slowed pod {fault.pod}: {measured}"
    return "pass", f"{head}: straggler detected and attributed to pod {fault.pod}: {measured}"
