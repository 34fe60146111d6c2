"""Chaos Toolkit probes of the pipeline under test."""

from __future__ import annotations

from harness import runtime

__all__ = ["runs_not_finished", "runs_not_succeeded"]


def runs_not_succeeded() -> int:
    """How many pipeline runs of this experiment failed or have not finished.

    Zero before the method starts any run; zero after it when every run succeeded.
    """
    runs = runtime.current().pipeline_runs.values()
    return sum(1 for run in runs if run.outcome is None or not run.outcome.succeeded)


def runs_not_finished() -> int:
    """How many pipeline runs of this experiment have not ended (succeeded or failed).

    For an experiment in which a correct pipeline is expected to fail: whether it failed the right
    way is for its checks to judge; the hypothesis only says nothing is left hanging.
    """
    runs = runtime.current().pipeline_runs.values()
    return sum(1 for run in runs if run.outcome is None)
