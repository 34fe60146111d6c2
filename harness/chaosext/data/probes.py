"""Chaos Toolkit probes of the pipeline runs when some are expected to fail."""

from __future__ import annotations

from collections.abc import Sequence

from harness import runtime

__all__ = ["runs_not_as_expected"]


def runs_not_as_expected(expect_failed: Sequence[str] = ()) -> int:
    """How many pipeline runs of this experiment did not end as expected: a run named in
    ``expect_failed`` must have failed, every other run must have succeeded; a run not finished counts.
    Zero before the method starts any run."""
    expected = set(expect_failed)
    count = 0
    for name, run in runtime.current().pipeline_runs.items():
        outcome = run.outcome
        if outcome is None or outcome.succeeded == (name in expected):
            count += 1
    return count
