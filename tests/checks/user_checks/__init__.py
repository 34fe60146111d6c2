"""A user's own check package, as a team would write one: importing it registers its checks."""

from __future__ import annotations

from harness.checks.registry import CheckParams, check
from harness.checks.verdict import CheckResult
from harness.evidence.run import RunEvidence
from harness.history.events import TrainStep, of_type

NAME = "at-least-n-training-steps"


@check(NAME)
def at_least_n_training_steps(evidence: RunEvidence, params: CheckParams) -> CheckResult:
    """Pass when the judged run reported at least ``min_steps`` training steps."""
    wanted = int(params.options.get("min_steps", 1))
    steps = [e.step for e in of_type(list(evidence.events), TrainStep) if e.run_id == evidence.run_id]
    reached = max(steps, default=0)
    verdict = "pass" if reached >= wanted else "fail"
    return CheckResult(name=NAME, verdict=verdict, weight=params.weight,
                       evidence=(f"{evidence.run_id} reached step {reached}; at least {wanted} wanted",))
