"""``steady-state``: the experiment's Chaos Toolkit hypothesis held before and after the method."""

from __future__ import annotations

from collections.abc import Sequence

from harness.checks.verdict import CheckResult
from harness.history.events import Event, ExperimentEnded, of_type

NAME = "steady-state"


def check_steady_state(events: Sequence[Event], *, weight: float = 1.0) -> CheckResult:
    """Pass when Chaos Toolkit completed the experiment without deviation.

    Chaos Toolkit reports ``completed`` even when the hypothesis deviated, so
    ``deviated`` is read on its own; an aborted or interrupted run is ``unknown``.
    """
    ended = of_type(list(events), ExperimentEnded)
    if not ended:
        return CheckResult(name=NAME, verdict="unknown", evidence=("the experiment never ended",), weight=weight)
    last = ended[-1]
    if last.deviated:
        return CheckResult(
            name=NAME, verdict="fail", evidence=(f"steady state deviated (status {last.status})",), weight=weight
        )
    if last.status != "completed":
        return CheckResult(
            name=NAME,
            verdict="unknown",
            evidence=(f"experiment status {last.status}: the hypothesis was not fully evaluated",),
            weight=weight,
        )
    return CheckResult(
        name=NAME, verdict="pass", evidence=("steady-state hypothesis met before and after the method",), weight=weight
    )
