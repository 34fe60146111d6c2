"""A suite: several experiments, one score, one gate."""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Sequence

from harness.experiment.result import ExperimentResult
from harness.score import Score, suite_score


@dataclass(frozen=True, kw_only=True)
class SuiteResult:
    run_id: str
    cluster: str
    started_at: float
    ended_at: float
    experiments: tuple[ExperimentResult, ...]
    score: Score
    min_score: float
    passed: bool  # score >= min_score


def summarize(
    *, run_id: str, cluster: str, started_at: float, ended_at: float, results: Sequence[ExperimentResult], min_score: float
) -> SuiteResult:
    score = suite_score([(r.weight, r.score) for r in results])
    return SuiteResult(
        run_id=run_id,
        cluster=cluster,
        started_at=started_at,
        ended_at=ended_at,
        experiments=tuple(results),
        score=score,
        min_score=min_score,
        passed=bool(results) and score.value >= min_score,
    )
