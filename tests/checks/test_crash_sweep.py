"""crash-points-recovered on hand-built histories."""

from __future__ import annotations

from harness.checks.crash_sweep import check_crash_sweep, crash_outcomes
from harness.faults.crash_plan import CrashKill, describe
from harness.history.events import CrashPointReached, Event, FaultInjected, RunStarted, StepFinished

RUN = "sweep-1"


def attempt(pod: str, step: str, ts: float) -> list[Event]:
    return [RunStarted(ts=ts, pod=pod, job=f"{RUN}-{step}", pipeline="ref", run_id=RUN, date="2026-11-21",
                       kind="daily", step_name=step)]


def hold(pod: str, point: str, occurrence: int, ts: float, pause: float = 2.0) -> CrashPointReached:
    return CrashPointReached(ts=ts, pod=pod, run_id=RUN, point=point, occurrence=occurrence, pause_seconds=pause,
                             received=ts + 0.05)


def kill(pod: str, point: str, occurrence: int, ts: float, *, forced: bool = True) -> FaultInjected:
    detail = f"deleted pod {pod} on node-a at {describe(CrashKill(point=point, occurrence=occurrence, forced=forced))}"
    return FaultInjected(ts=ts, fault="crash-point", fault_id="f1", target=pod, detail=detail)


def finished(pod: str, step: str, ts: float) -> StepFinished:
    return StepFinished(ts=ts, pod=pod, run_id=RUN, step_name=step, seconds=1.0)


def test_a_kill_inside_the_hold_whose_step_finishes_afterwards_passes():
    events = [*attempt("f-0", "features", 100), hold("f-0", "features.between-shards", 3, 101),
              kill("f-0", "features.between-shards", 3, 101.4), *attempt("f-1", "features", 103),
              finished("f-1", "features", 110)]
    result = check_crash_sweep(events, run_id=RUN)
    assert result.verdict == "pass", result.evidence
    assert "features.between-shards#3 (SIGKILL) on f-0: hit; step features finished afterwards" in result.evidence


def test_a_killed_step_that_never_finishes_afterwards_fails():
    events = [*attempt("r-0", "register", 100), hold("r-0", "register.between-version-and-run", 1, 101),
              kill("r-0", "register.between-version-and-run", 1, 101.2, forced=False),
              *attempt("r-1", "register", 103)]
    result = check_crash_sweep(events, run_id=RUN)
    assert result.verdict == "fail"
    assert "register.between-version-and-run#1" in result.evidence[0]


def test_the_finishing_of_the_killed_pod_itself_is_not_recovery():
    # A graceful kill the pod outlived (it finished the step during its grace period) is still recovered:
    # a later attempt must finish or skip the step; the killed pod's own StepFinished does not count.
    events = [*attempt("e-0", "evaluate", 100), hold("e-0", "evaluate.evaluation-published", 1, 101),
              kill("e-0", "evaluate.evaluation-published", 1, 101.3, forced=False), finished("e-0", "evaluate", 102)]
    assert check_crash_sweep(events, run_id=RUN).verdict == "fail"


def test_a_kill_issued_after_the_hold_ended_is_a_miss_and_alone_decides_nothing():
    events = [*attempt("f-0", "features", 100), hold("f-0", "features.between-shards", 1, 101, pause=1.0),
              kill("f-0", "features.between-shards", 1, 103.5), *attempt("f-1", "features", 104),
              finished("f-1", "features", 110)]
    [outcome] = crash_outcomes(events, run_id=RUN)
    assert not outcome.hit
    result = check_crash_sweep(events, run_id=RUN)
    assert result.verdict == "unknown" and "missed" in result.evidence[1]


def test_no_crash_point_kill_is_unknown():
    result = check_crash_sweep([*attempt("f-0", "features", 100), finished("f-0", "features", 101)], run_id=RUN)
    assert result.verdict == "unknown"


def test_kills_of_other_runs_pods_are_not_this_runs():
    events = [hold("x-0", "features.between-shards", 1, 101), kill("x-0", "features.between-shards", 1, 101.2)]
    assert crash_outcomes(events, run_id=RUN) == []
