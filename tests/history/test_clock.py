"""One clock: pipeline events stamped by pods whose clocks are off are placed on the harness's clock."""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness.checks.interruptions import fault_outcomes
from harness.checks.resume import check_resume
from harness.evidence.reference import ReferenceRun
from harness.history.clock import HarnessClock
from harness.history.events import (
    Event,
    ExperimentEnded,
    ExperimentStarted,
    FaultHealed,
    FaultInjected,
    JobFinished,
    PodExited,
    PodStarted,
    TrainStep,
    from_json,
)
from tests.checks.histories import RUN, SHA, graceful_then_forced

HARNESS_STAMPED = (PodStarted, PodExited, FaultInjected, FaultHealed, JobFinished, ExperimentStarted, ExperimentEnded)
DELIVERY = 0.02


def skewed(events: list[Event], skew_by_attempt: dict[int, float]) -> list[Event]:
    """The same history as a real cluster would record it: pipeline events stamped by pod clocks that are
    ``skew`` seconds off, received by the harness ``DELIVERY`` seconds after they happened."""
    out: list[Event] = []
    for e in events:
        if isinstance(e, HARNESS_STAMPED):
            out.append(e)
        else:
            out.append(replace(e, ts=e.ts + skew_by_attempt.get(e.attempt, 0.0), received=e.ts + DELIVERY))
    return out


def test_a_harness_stamped_event_keeps_its_time() -> None:
    event = PodStarted(ts=10.0, pod="p", job="j", attempt=0, node="n", pid=1)
    assert HarnessClock([event]).time(event) == 10.0


def test_pod_events_are_placed_at_their_own_spacing_on_the_harness_clock() -> None:
    steps = [TrainStep(ts=500.0 + i, received=100.0 + i + d, run_id=RUN, step=i, loss=1.0, pod="p", attempt=0)
             for i, d in enumerate((0.5, 0.01, 0.3))]
    clock = HarnessClock(steps)
    assert [clock.time(e) for e in steps] == pytest.approx([100.01, 101.01, 102.01])
    assert clock.largest_offset == pytest.approx(399.99)


@pytest.mark.parametrize("skews", [{0: 300.0, 1: -120.0, 2: 45.0}, {0: -3600.0, 1: 3600.0, 2: 0.5}])
def test_recovery_and_steps_lost_do_not_depend_on_the_pods_clocks(skews: dict[int, float]) -> None:
    honest = fault_outcomes(graceful_then_forced())
    measured = fault_outcomes(skewed(graceful_then_forced(), skews))
    for want, got in zip(honest, measured, strict=True):
        assert got.steps_lost == want.steps_lost
        assert got.latest_checkpoint == want.latest_checkpoint
        assert got.recovery_seconds == pytest.approx(want.recovery_seconds, abs=DELIVERY + 1e-6)
        assert "the harness's clock" in got.clock
    result = check_resume(skewed(graceful_then_forced(), skews), run_id=RUN, reference=ReferenceRun(params_sha256=SHA))
    assert result.verdict == "pass"


def test_raw_pod_timestamps_would_get_recovery_wrong() -> None:
    """The clock matters: the same skewed history judged on the pods' own stamps gives a recovery
    time off by the skew (so the test above can fail)."""
    events = skewed(graceful_then_forced(), {0: 300.0, 1: 300.0, 2: 300.0})
    fault = next(e for e in events if isinstance(e, FaultInjected))
    first = next(e for e in events if isinstance(e, TrainStep) and e.attempt == 1)
    honest = fault_outcomes(graceful_then_forced())[0].recovery_seconds
    assert honest is not None and (first.ts - fault.ts) - honest > 299


def test_the_collector_stamps_when_it_received_a_line() -> None:
    event = from_json('{"event": "train_step", "ts": 5.0, "run_id": "r", "step": 1, "loss": 0.5, "received": 1}',
                      pod="p", job="j", attempt=0, received=99.0)
    assert event is not None and (event.ts, event.received) == (5.0, 99.0)
