"""The session's judge phase: the run's evidence in, verdicts and a score out, nothing live touched."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest

from harness import runtime
from harness.checks.slo import STANDARD_SLOS
from harness.evidence.reference import ReferenceRun
from harness.evidence.run import RunEvidence
from harness.experiment.loader import load_experiment
from harness.experiment.observe import SloObservation
from harness.experiment.session import ExperimentSession, Observed
from tests.checks.histories import RUN, SHA, graceful_then_forced

ROOT = Path(__file__).resolve().parents[2]


class _NoEnvironment:
    """Stands in for the live environment; judging must never read it."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"judge read the live environment ({name})")


def _observed(*, reference: ReferenceRun | None, interrupted: str = "") -> tuple[ExperimentSession, Observed]:
    spec = load_experiment(ROOT / "experiments" / "pod-delete.yaml")
    session = ExperimentSession(spec=spec, env=cast(runtime.Environment, _NoEnvironment()), out_dir=Path("unused"),
                                tag="t1")
    evidence = RunEvidence(events=tuple(graceful_then_forced()), run_id=RUN, facts=spec.workload.facts(),
                           reference=reference, reference_error="" if reference else "the reference run failed",
                           inventory=None, inventory_error="no direct S3 access")
    stall = STANDARD_SLOS["training-stall"]
    slos = (SloObservation(spec=stall, promql=stall.promql, result=None, error="Prometheus did not answer"),)
    return session, Observed(evidence=evidence, slos=slos, status="completed", deviated=False, interrupted=interrupted)


def test_judge_turns_the_collected_evidence_into_verdicts_and_a_score() -> None:
    session, observed = _observed(reference=ReferenceRun(params_sha256=SHA))
    result = session.judge(observed)
    verdicts = {c.name: c.verdict for c in result.checks}
    # The hand-built history reports no inputs and no evaluation, so lineage and the quality gate cannot decide.
    assert verdicts == {"zero-duplicate-artifacts": "unknown", "resume-from-checkpoint": "pass",
                        "lineage": "unknown", "quality-gate": "unknown",
                        "steady-state": "pass", "slo:training-stall": "unknown"}
    weights = {c.name: c.weight for c in result.checks}
    assert (weights["resume-from-checkpoint"], weights["zero-duplicate-artifacts"]) == (3.0, 2.0)
    assert result.score.value == pytest.approx(100 * (3 + 1) / (2 + 3 + 1 + 1 + 1 + 1))
    assert result.reference_sha256 == SHA and result.error == ""
    assert [f.fault for f in result.faults] == ["pod-delete", "pod-delete"]


def test_judge_reads_the_reference_from_the_evidence_and_says_why_it_is_missing() -> None:
    session, observed = _observed(reference=None)
    result = session.judge(observed)
    resume = next(c for c in result.checks if c.name == "resume-from-checkpoint")
    assert resume.verdict == "unknown"
    assert result.reference_sha256 is None and result.error == "the reference run failed"


def test_an_interrupted_run_is_never_judged_a_pass() -> None:
    session, observed = _observed(reference=ReferenceRun(params_sha256=SHA), interrupted="stopped by Ctrl-C")
    result = session.judge(observed)
    assert {c.verdict for c in result.checks} == {"unknown"}
    assert all(c.evidence[0] == "stopped by Ctrl-C; not judged" for c in result.checks)
