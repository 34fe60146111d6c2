"""A suite: several experiments, one score, one gate."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.baseline import Comparison, Scores, compare
from harness.experiment.result import ExperimentResult
from harness.score import Score, suite_score

DEFAULT_MIN_SCORE = 90.0
"""The gate of ``make chaos``, ``mlchaos run`` and the pytest plugin when none is given."""


@dataclass(frozen=True, kw_only=True)
class SuiteResult:
    run_id: str
    cluster: str  # embedded, kind or existing
    kubernetes_version: str
    started_at: float
    ended_at: float
    experiments: tuple[ExperimentResult, ...]
    score: Score
    min_score: float
    baseline: Comparison | None
    passed: bool  # not interrupted, score >= min_score and, with a baseline, no drop beyond its max_drop
    interrupted: bool = False  # an experiment was stopped before its end (Ctrl-C, SIGTERM, a lost cluster)


def summarize(
    *,
    run_id: str,
    cluster: str,
    kubernetes_version: str = "",
    started_at: float,
    ended_at: float,
    results: Sequence[ExperimentResult],
    min_score: float,
    baseline: Scores | None = None,
    max_drop: float = 5.0,
) -> SuiteResult:
    score = suite_score([(r.weight, r.score) for r in results])
    comparison = (
        compare(baseline=baseline, score=score.value, experiments={r.name: r.score.value for r in results},
                max_drop=max_drop)
        if baseline is not None
        else None
    )
    interrupted = any(r.status == "interrupted" for r in results)
    return SuiteResult(
        run_id=run_id,
        cluster=cluster,
        kubernetes_version=kubernetes_version,
        started_at=started_at,
        ended_at=ended_at,
        experiments=tuple(results),
        score=score,
        min_score=min_score,
        baseline=comparison,
        passed=bool(results) and not interrupted and score.value >= min_score
        and (comparison is None or comparison.passed),
        interrupted=interrupted,
    )
