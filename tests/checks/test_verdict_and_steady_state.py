from __future__ import annotations

from harness.checks.steady_state import check_steady_state
from harness.checks.verdict import CheckResult, safe, worst
from tests.checks.histories import TrainingHistory


def test_worst_keeps_fail_over_unknown_over_pass():
    assert worst(["pass", "unknown", "pass"]) == "unknown"
    assert worst(["unknown", "fail", "pass"]) == "fail"
    assert worst(["pass"]) == "pass"
    assert worst([]) == "unknown"


def test_a_check_that_raises_is_unknown():
    def boom() -> CheckResult:
        raise KeyError("missing")

    result = safe("x", boom)
    assert result.verdict == "unknown"
    assert "KeyError" in result.evidence[0]


def test_steady_state_verdicts():
    assert check_steady_state(TrainingHistory().end()).verdict == "pass"
    assert check_steady_state(TrainingHistory().end(deviated=True)).verdict == "fail"
    assert check_steady_state(TrainingHistory().end(status="interrupted")).verdict == "unknown"
    assert check_steady_state([]).verdict == "unknown"
