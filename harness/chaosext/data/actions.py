"""Chaos Toolkit actions on the pipeline's input data: wrappers over :mod:`harness.faults.late_data`."""

from __future__ import annotations

import datetime

from harness import runtime
from harness.faults.late_data import LATE_DATA, LateDataParams

__all__ = ["delay_raw_parts", "wait_for_pipeline_run_failure"]

RAW_KEY = "raw/{pipeline}/date={date}/hour={hour:02d}/part-0.npz"  # the reference pipeline's hourly parts


def delay_raw_parts(
    count: int = 2, delay_seconds: float = 10.0, missing: bool = False, date: str = "", parts: int = 24,
    key_template: str = RAW_KEY, watch_seconds: float = 300.0,
) -> str:
    """Make ``count`` of the ``parts`` hourly raw parts of ``date`` (default: the experiment's) land
    ``delay_seconds`` after ingest wrote them, or, with ``missing``, not before the fault is healed.
    Which hours is drawn from the fault's seed. Inject it before the run that ingests the date starts.
    ``key_template`` names a part (``{pipeline}``, ``{date}``, ``{hour}``). Returns the fault id."""
    exp = runtime.current()
    day = date or exp.settings.date
    try:
        datetime.date.fromisoformat(day)
    except ValueError:
        raise ValueError(f"dates are YYYY-MM-DD, got {day!r}") from None
    keys = tuple(key_template.format(pipeline=exp.workload.name, date=day, hour=h) for h in range(parts))
    params = LateDataParams(keys=keys, count=count, delay_seconds=delay_seconds, missing=missing,
                            watch_seconds=watch_seconds)
    return exp.faults.inject(LATE_DATA, params).fault_id


def wait_for_pipeline_run_failure(name: str, step: str = "", timeout: float = 900.0) -> dict[str, object]:
    """Block until the run ``name`` ends, and raise unless it failed (at ``step``, when given): for a
    run the experiment expects to be refused, such as one whose day stays partial."""
    outcome = runtime.current().run_named(name).wait(timeout=timeout)
    if outcome.succeeded:
        raise RuntimeError(f"pipeline run {outcome.run_id} succeeded, but it was expected to fail")
    if step and outcome.failed_step != step:
        raise RuntimeError(f"pipeline run {outcome.run_id} failed at step {outcome.failed_step!r}, "
                           f"expected {step!r}: {outcome.detail}")
    return {"run_id": outcome.run_id, "failed_step": outcome.failed_step,
            "duration_seconds": round(outcome.duration_seconds, 3), "detail": outcome.detail}
