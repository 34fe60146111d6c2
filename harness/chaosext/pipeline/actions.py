"""Chaos Toolkit actions that drive the pipeline under test."""

from __future__ import annotations

from harness import runtime, schedule

__all__ = ["start_pipeline_run", "wait_for_training_step", "wait_for_pipeline_run"]


def start_pipeline_run(kind: str = "daily") -> str:
    """Start a pipeline run of ``kind`` (``daily`` or ``backfill``) in the background; returns its run id.

    The first run of an experiment is its main run, the one the checks judge.
    """
    if kind not in ("daily", "backfill"):
        raise ValueError(f"kind must be 'daily' or 'backfill', got {kind!r}")
    return runtime.current().start_pipeline_run(kind=kind).run_id


def wait_for_training_step(step: int, timeout: float = 300.0) -> int:
    """Block until the main run has completed training step ``step``; returns the step reached."""
    exp = runtime.current()
    run = exp.main_run()
    return schedule.wait_for_training_step(exp.history, run_id=run.run_id, step=step, timeout=timeout).step


def wait_for_pipeline_run(timeout: float = 900.0) -> dict[str, object]:
    """Block until the main run ends; returns its outcome (succeeded, failed_step, duration, detail).

    Raises when the run failed, so the journal shows the failed activity.
    """
    outcome = runtime.current().main_run().wait(timeout=timeout)
    if not outcome.succeeded:
        raise RuntimeError(f"pipeline run {outcome.run_id} failed: {outcome.detail}")
    return {
        "run_id": outcome.run_id,
        "succeeded": outcome.succeeded,
        "duration_seconds": round(outcome.duration_seconds, 3),
        "detail": outcome.detail,
    }
