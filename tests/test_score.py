from __future__ import annotations

import pytest

from harness.checks.verdict import CheckResult
from harness.score import experiment_score, suite_score


def check(verdict, weight):
    return CheckResult(name="c", verdict=verdict, evidence=(), weight=weight)


def test_experiment_score_is_the_weighted_share_of_passed_checks():
    score = experiment_score([check("pass", 3), check("fail", 1)])
    assert score.value == pytest.approx(75.0)
    assert score.formula == "100 * (3) / 4"


def test_unknown_counts_as_not_passed():
    assert experiment_score([check("pass", 1), check("unknown", 1)]).value == pytest.approx(50.0)


def test_no_checks_scores_zero():
    assert experiment_score([]).value == 0.0


def test_suite_score_is_the_weighted_mean():
    a = experiment_score([check("pass", 1)])
    b = experiment_score([check("fail", 1)])
    assert suite_score([(3, a), (1, b)]).value == pytest.approx(75.0)
    assert suite_score([]).value == 0.0
