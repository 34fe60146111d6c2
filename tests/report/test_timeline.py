from __future__ import annotations

from harness.history.events import CrashPointReached, EnvironmentRefused, InputsWaiting
from harness.report.timeline import time_marks, timeline_png
from tests.checks.histories import RUN, graceful_then_forced


def test_each_failure_mode_marks_its_own_moments_of_the_judged_run() -> None:
    events = [
        *graceful_then_forced(),
        CrashPointReached(ts=1001.0, pod="p", job="j", attempt=0, run_id=RUN, point="train.model-published",
                          occurrence=1, pause_seconds=2.0),
        InputsWaiting(ts=1002.0, pod="p", job="j", attempt=0, run_id=RUN, step_name="validate",
                      date="2026-11-01", missing=("hour=03",), waited_seconds=1.0),
        EnvironmentRefused(ts=1003.0, pod="p", job="j", attempt=0, run_id="another-run", step=10,
                           fingerprint="a", checkpoint_fingerprint="b", differing="torch"),
    ]
    marks = time_marks(events, run_id=RUN)
    labels = {label for label, _, _ in marks}
    assert labels == {"held at a crash point", "inputs incomplete, waiting"}  # another run's are not its own
    assert timeline_png(events, [], run_id=RUN, title="t").startswith(b"\x89PNG")


def test_a_run_without_failure_mode_events_has_no_marks() -> None:
    assert time_marks(graceful_then_forced(), run_id=RUN) == {}
