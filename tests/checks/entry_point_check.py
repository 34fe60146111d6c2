"""A check module a plugin distribution names in its ``mlchaos.checks`` entry point."""

from __future__ import annotations

from harness.checks.registry import CheckParams, check
from harness.checks.verdict import CheckResult
from harness.evidence.run import RunEvidence
from harness.history.events import TrainStep


@check("trained-at-all")
def trained_at_all(evidence: RunEvidence, params: CheckParams) -> CheckResult:
    trained = any(isinstance(e, TrainStep) for e in evidence.events)
    return CheckResult(name="trained-at-all", verdict="pass" if trained else "fail", weight=params.weight,
                       evidence=("the run trained" if trained else "no training step in the history",))
