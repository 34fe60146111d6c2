"""Chaos Toolkit actions that drive the pipeline under test."""

from __future__ import annotations

import datetime

from harness import runtime, schedule
from harness.faults.backfill_storm import BACKFILL_STORM, BackfillStormParams
from harness.workload.backfill import dates_before

__all__ = [
    "start_pipeline_run",
    "wait_for_training_step",
    "wait_for_pipeline_run",
    "wait_for_pipeline_run_end",
    "start_backfill",
    "stop_backfills",
]


def start_pipeline_run(kind: str = "daily", name: str = "main", date: str = "") -> str:
    """Start a pipeline run of ``kind`` (``daily`` or ``backfill``) in the background; returns its run id.

    The run named ``main`` is the one the checks judge; give other runs other names
    (for example ``idle``, a run on an idle cluster to compare with). ``date``
    (YYYY-MM-DD) overrides the experiment's partition date.
    """
    if kind not in ("daily", "backfill"):
        raise ValueError(f"kind must be 'daily' or 'backfill', got {kind!r}")
    if date:
        _check_date(date)
    return runtime.current().start_pipeline_run(kind=kind, name=name, date=date or None).run_id


def start_backfill(
    days: int = 30, name: str = "backfill", concurrency: int = 2, train_steps: int = 40, end_date: str = "",
    publish_share: float = 0.0,
) -> int:
    """Start a backfill of the ``days`` dates before ``end_date`` (default: the experiment's date),
    ``concurrency`` dates at a time, each a full pipeline run training ``train_steps`` steps.

    ``publish_share`` (0..1): that share of the dates (the first, then evenly spread) is let finish when
    the backfill is stopped, so those runs go through evaluate and register while the others are stopped.

    Run ids are ``backfill-<date>``: two backfills of the same range share them, as a
    re-triggered backfill does. Returns the number of dates.
    """
    if days < 1 or concurrency < 1 or train_steps < 1:
        raise ValueError("days, concurrency and train_steps must each be >= 1")
    exp = runtime.current()
    end = end_date or exp.settings.date
    _check_date(end)
    params = BackfillStormParams(name=name, dates=tuple(dates_before(end, days)), concurrency=concurrency,
                                 train_steps=train_steps, publish_share=publish_share)
    exp.faults.inject(BACKFILL_STORM, params)
    return len(params.dates)


def stop_backfills() -> int:
    """Stop every backfill of the experiment (no new dates; runs in flight are cancelled). Returns how many.

    Backfills are faults of the experiment: this heals them (and only them)."""
    faults = runtime.current().faults
    return len([faults.heal(a.fault_id) for a in faults.active() if a.fault == BACKFILL_STORM.name])


def _check_date(value: str) -> None:
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"dates are YYYY-MM-DD, got {value!r}") from None


def wait_for_training_step(step: int, timeout: float = 300.0) -> int:
    """Block until the main run has completed training step ``step``; returns the step reached."""
    exp = runtime.current()
    run = exp.main_run()
    return schedule.wait_for_training_step(exp.history, run_id=run.run_id, step=step, timeout=timeout).step


def wait_for_pipeline_run_end(timeout: float = 900.0, name: str = "main") -> dict[str, object]:
    """Block until the run ``name`` ends and return its outcome, whether it succeeded or failed: for an
    experiment in which a correct pipeline is expected to fail (it refuses to go on, and a check judges how)."""
    outcome = runtime.current().run_named(name).wait(timeout=timeout)
    return {
        "run_id": outcome.run_id,
        "succeeded": outcome.succeeded,
        "duration_seconds": round(outcome.duration_seconds, 3),
        "detail": outcome.detail,
    }


def wait_for_pipeline_run(timeout: float = 900.0, name: str = "main") -> dict[str, object]:
    """Block until the run ``name`` ends; returns its outcome (succeeded, duration, detail).

    Raises when the run failed, so the journal shows the failed activity.
    """
    outcome = runtime.current().run_named(name).wait(timeout=timeout)
    if not outcome.succeeded:
        raise RuntimeError(f"pipeline run {outcome.run_id} failed: {outcome.detail}")
    return {
        "run_id": outcome.run_id,
        "succeeded": outcome.succeeded,
        "duration_seconds": round(outcome.duration_seconds, 3),
        "detail": outcome.detail,
    }
