"""Game-day figures from hand-built histories: every time is chosen so the expected seconds are exact."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

import pytest

from harness.checks.interruptions import fault_outcomes
from harness.gameday.figures import night_figures, percentile, run_figures
from harness.gameday.model import BADPUT_CLASSES, Badput, RunFigures
from harness.history.events import (
    CheckpointRestored,
    CheckpointSaved,
    Event,
    ExperimentStarted,
    FaultHealed,
    FaultInjected,
    JobFinished,
    PodExited,
    PodStarted,
    RunStarted,
    SigtermReceived,
    StepFinished,
    TrainingCompleted,
    TrainingStarted,
    TrainStep,
)

RUN = "gd-r1"
BASE = 1_000.0  # every time below is seconds after BASE (a zero `received` would mean "harness-stamped")
TOTAL_STEPS = 10


@dataclass
class History:
    """Events of one pipeline run, at times given relative to BASE. Pods are ``<job>-a<attempt>``;
    pipeline events are harness-stamped (``received`` 0) unless :func:`skewed` moves them."""

    run_id: str = RUN
    events: list[Event] = field(default_factory=list)
    fault_count: int = 0

    def job(self, step: str = "train") -> str:
        return f"{self.run_id}-{step}"

    def pod(self, attempt: int, step: str = "train") -> str:
        return f"{self.job(step)}-a{attempt}"

    def _source(self, attempt: int, step: str = "train") -> dict[str, Any]:
        return dict(pod=self.pod(attempt, step), job=self.job(step), attempt=attempt)

    def other_step(self, step: str, start: float, end: float) -> History:
        """A non-training step's pod: runs from ``start`` to ``end``, succeeds."""
        src = self._source(0, step)
        self.events += [
            PodStarted(ts=BASE + start, node="node-a", pid=1, labels=f"run={self.run_id},step={step}", **src),
            RunStarted(ts=BASE + start + 0.5, pipeline="p", run_id=self.run_id, date="2026-11-21", kind="daily",
                       step_name=step, **src),
            StepFinished(ts=BASE + end - 0.5, run_id=self.run_id, step_name=step, seconds=end - start - 1, **src),
            PodExited(ts=BASE + end, node="node-a", exit_code=0, reason="Completed", **src),
            JobFinished(ts=BASE + end, job=self.job(step), succeeded=True, failures=0),
        ]
        return self

    def pod_started(self, attempt: int, at: float) -> History:
        self.events.append(PodStarted(ts=BASE + at, node="node-a", pid=1, **self._source(attempt)))
        return self

    def pod_exited(self, attempt: int, at: float, code: int = 0) -> History:
        reason = "Completed" if code == 0 else "Error"
        self.events.append(PodExited(ts=BASE + at, node="node-a", exit_code=code, reason=reason,
                                     **self._source(attempt)))
        return self

    def job_finished(self, at: float, *, succeeded: bool = True) -> History:
        self.events.append(JobFinished(ts=BASE + at, job=self.job(), succeeded=succeeded, failures=0))
        return self

    def training_started(self, attempt: int, at: float, start_step: int = 0) -> History:
        self.events.append(TrainingStarted(ts=BASE + at, run_id=self.run_id, start_step=start_step,
                                           total_steps=TOTAL_STEPS, checkpoint_every=5, seed=7, device="cpu",
                                           **self._source(attempt)))
        return self

    def steps(self, attempt: int, first: int, last: int, *, at: float) -> History:
        """TrainStep ``first`` at ``at``, then one step a second up to ``last``."""
        for step in range(first, last + 1):
            self.events.append(TrainStep(ts=BASE + at + step - first, run_id=self.run_id, step=step, loss=1.0,
                                         **self._source(attempt)))
        return self

    def saved(self, attempt: int, step: int, at: float, seconds: float, reason: str = "periodic") -> History:
        self.events.append(CheckpointSaved(ts=BASE + at, run_id=self.run_id, step=step, manifest_key=f"ck/{step}",
                                           seconds=seconds, bytes=1, reason=reason, **self._source(attempt)))
        return self

    def restored(self, attempt: int, step: int, at: float, seconds: float) -> History:
        self.events.append(CheckpointRestored(ts=BASE + at, run_id=self.run_id, step=step,
                                              manifest_key=f"ck/{step}", seconds=seconds, **self._source(attempt)))
        return self

    def fault(self, attempt: int, at: float, *, kind: str = "pod-delete", grace: float = 0.0) -> History:
        self.fault_count += 1
        src = self._source(attempt)
        self.events.append(FaultInjected(ts=BASE + at, fault=kind, fault_id=f"{kind}-{self.fault_count}",
                                         target=src["pod"], detail="", grace_period_seconds=grace, **src))
        return self

    def sigterm(self, attempt: int, step: int, at: float) -> History:
        self.events.append(SigtermReceived(ts=BASE + at, run_id=self.run_id, step=step, **self._source(attempt)))
        return self

    def completed(self, attempt: int, at: float) -> History:
        self.events.append(TrainingCompleted(ts=BASE + at, run_id=self.run_id, step=TOTAL_STEPS, params_sha256="a",
                                             **self._source(attempt)))
        return self

    def history(self) -> list[Event]:
        """The events in the order the harness appends them (by its own clock)."""
        return sorted(self.events, key=lambda e: e.received or e.ts)


def figures(h: History | list[Event], *, completed: bool = True) -> RunFigures:
    events = h.history() if isinstance(h, History) else h
    return run_figures(events, run_id=RUN, completed=completed)


def badput(**seconds: float) -> Badput:
    return Badput(**seconds)


def assert_badput(actual: Badput, expected: Badput) -> None:
    for name in BADPUT_CLASSES:
        assert getattr(actual, name) == pytest.approx(getattr(expected, name), abs=1e-9), name


def assert_accounts_for_elapsed(f: RunFigures) -> None:
    """Every class non-negative, and productive + badput is the elapsed time (within 1 %)."""
    assert f.productive_seconds >= 0
    assert all(getattr(f.badput, name) >= 0 for name in BADPUT_CLASSES)
    assert f.productive_seconds + f.badput.total() == pytest.approx(f.elapsed_seconds, rel=0.01)


# --- the scenarios ---------------------------------------------------------------------------------


def first_attempt_to_step_7(h: History) -> History:
    """Attempt 0: pod at 0, training at 2, steps 1-7 at 3..9, checkpoint 5 saved in [7.0, 7.2]."""
    return h.pod_started(0, 0).training_started(0, 2).steps(0, 1, 7, at=3).saved(0, 5, 7.2, 0.2)


def uninterrupted() -> History:
    h = History().other_step("ingest", 0, 6)
    h.pod_started(0, 8).training_started(0, 11).steps(0, 1, 10, at=12)
    h.saved(0, 5, 16.5, 0.5)  # blocking, between steps 5 (t=16) and 6 (t=17)
    h.saved(0, 10, 21.3, 0.3)  # after the last step (t=21)
    return h.completed(0, 21.5).pod_exited(0, 23).job_finished(23)


def sigkill_resumed() -> History:
    """SIGKILL at 9.5 during step 8 (checkpoint 5): steps 6, 7 and the partial step 8 are redone."""
    h = first_attempt_to_step_7(History()).fault(0, 9.5).pod_exited(0, 10, 137)
    h.events.append(FaultHealed(ts=BASE + 30, fault="pod-delete", fault_id="pod-delete-1", detail="gone"))
    h.pod_started(1, 12).restored(1, 5, 14.5, 0.5).training_started(1, 15, start_step=5).steps(1, 6, 10, at=16)
    return h.completed(1, 20.5).pod_exited(1, 21).job_finished(21)


def graceful(*, replacement_at: float = 12) -> History:
    """SIGTERM at 9.2: step 8 finishes (t=10), checkpoint 8 is saved, the next attempt resumes at 8."""
    h = first_attempt_to_step_7(History()).fault(0, 9.2, grace=30).steps(0, 8, 8, at=10).sigterm(0, 8, 10.0)
    if replacement_at < 11:  # the replacement starts while the old attempt saves, as Kubernetes does
        h.saved(0, 8, 11.0, 1.0, reason="sigterm").pod_exited(0, 11.2, 143).pod_started(1, replacement_at)
        h.restored(1, 8, 11.8, 0.3).training_started(1, 12.0, start_step=8).steps(1, 9, 10, at=13)
        return h.completed(1, 14.5).pod_exited(1, 15).job_finished(15)
    h.saved(0, 8, 10.4, 0.4, reason="sigterm").pod_exited(0, 11, 143)
    h.pod_started(1, replacement_at).restored(1, 8, 13.3, 0.3).training_started(1, 13.5, start_step=8)
    return h.steps(1, 9, 10, at=14.5).completed(1, 16).pod_exited(1, 16.5).job_finished(16.5)


# --- single runs ------------------------------------------------------------------------------------


def test_an_uninterrupted_run_loses_nothing() -> None:
    f = figures(uninterrupted())
    assert f.elapsed_seconds == pytest.approx(23)
    # 10 steps of 1 s, less the 0.5 s save inside step 6's interval: all of training but its save.
    assert f.productive_seconds == pytest.approx(9.5)
    assert f.productive_seconds + f.badput.checkpoint_save - 0.3 == pytest.approx(10)  # the training time
    # Other: ingest's pod (6) + the train pod after its last step (2) less the final save (0.3).
    assert_badput(f.badput, badput(startup=3, checkpoint_save=0.8, scheduling_wait=2, other=7.7))
    assert (f.steps_lost, f.recoveries, f.unrecovered, dict(f.faults)) == (0, (), 0, {})
    assert_accounts_for_elapsed(f)


def test_sigkill_then_resume_from_checkpoint() -> None:
    events = sigkill_resumed().history()
    f = figures(events)
    assert f.elapsed_seconds == pytest.approx(21)  # the heal at 30 does not extend the run
    assert f.productive_seconds == pytest.approx(10)  # steps 1-5 of attempt 0, 6-10 of attempt 1
    # Lost: step 6 (1 s less the 0.2 s save in it), step 7 (1 s) and the partial step 8 (9 -> fault at 9.5).
    # Startup: 0 -> 2, and 12 -> 15 less the 0.5 s restore. Wait: pod exit 10 -> next pod 12.
    assert_badput(f.badput, badput(startup=4.5, checkpoint_save=0.2, checkpoint_restore=0.5, lost_progress=2.3,
                                   scheduling_wait=2, other=1.5))
    assert f.steps_lost == 2
    assert f.recoveries == pytest.approx((6.5,))  # fault at 9.5 -> first step of attempt 1 at 16
    assert (f.unrecovered, dict(f.faults)) == (0, {"pod-delete": 1})
    (outcome,) = fault_outcomes(events)  # the figures agree with the resume check's
    assert outcome.steps_lost == f.steps_lost
    assert outcome.recovery_seconds == pytest.approx(f.recoveries[0])
    assert_accounts_for_elapsed(f)


def test_a_graceful_kill_loses_no_steps() -> None:
    f = figures(graceful())
    assert f.elapsed_seconds == pytest.approx(16.5)
    assert f.productive_seconds == pytest.approx(9.8)  # steps 1-8 (less the 0.2 s save) and 9-10
    # Nothing lost: step 8 finished after the SIGTERM and was saved; the attempt stopped right after it.
    assert_badput(f.badput, badput(startup=3.2, checkpoint_save=0.6, checkpoint_restore=0.3, scheduling_wait=1,
                                   other=1.6))
    assert (f.steps_lost, f.unrecovered) == (0, 0)
    assert f.recoveries == pytest.approx((5.3,))  # SIGTERM at 9.2 -> step 9 at 14.5
    assert_accounts_for_elapsed(f)


def test_a_replacement_starting_up_during_the_old_attempts_save_is_not_counted_twice() -> None:
    f = figures(graceful(replacement_at=9.3))
    assert f.elapsed_seconds == pytest.approx(15)
    assert f.productive_seconds == pytest.approx(9.8)
    # Attempt 1's startup 9.3 -> 12 less step 8 (9 -> 10), the save (10 -> 11) and its restore: 0.7 s.
    assert_badput(f.badput, badput(startup=2.7, checkpoint_save=1.2, checkpoint_restore=0.3, other=1))
    assert f.productive_seconds + f.badput.total() == pytest.approx(f.elapsed_seconds)
    assert_accounts_for_elapsed(f)


def overlapping_faults() -> list[Event]:
    """A node drain (9.2) and a pod delete (9.4) both end attempt 0: one restart."""
    h = first_attempt_to_step_7(History()).fault(0, 9.2, kind="node-drain").fault(0, 9.4).pod_exited(0, 10, 137)
    h.pod_started(1, 12).restored(1, 5, 14.5, 0.5).training_started(1, 15, start_step=5).steps(1, 6, 10, at=16)
    return h.completed(1, 20.5).pod_exited(1, 21).job_finished(21).history()


def test_two_faults_that_end_one_attempt_count_once() -> None:
    events = overlapping_faults()
    assert [o.steps_lost for o in fault_outcomes(events)] == [2, 2]  # each fault alone claims the same steps
    f = figures(events)
    assert f.steps_lost == 2
    assert f.recoveries == pytest.approx((6.8,))  # from the first fault (9.2) to step 6 at 16
    assert f.unrecovered == 0
    assert dict(f.faults) == {"node-drain": 1, "pod-delete": 1}
    # Lost: steps 6-7 (1.8 s) and the partial step 8 cut at the first fault (0.2 s).
    assert_badput(f.badput, badput(startup=4.5, checkpoint_save=0.2, checkpoint_restore=0.5, lost_progress=2.0,
                                   scheduling_wait=2, other=1.8))
    assert_accounts_for_elapsed(f)


def test_a_second_fault_on_the_replacement_loses_the_redone_steps_again() -> None:
    h = first_attempt_to_step_7(History()).fault(0, 9.5).pod_exited(0, 10, 137)
    h.pod_started(1, 12).restored(1, 5, 14.5, 0.5).training_started(1, 15, start_step=5).steps(1, 6, 7, at=16)
    h.fault(1, 17.5).pod_exited(1, 18, 137)
    h.pod_started(2, 19).restored(2, 5, 20.5, 0.5).training_started(2, 21, start_step=5).steps(2, 6, 10, at=22)
    f = figures(h.completed(2, 26.5).pod_exited(2, 27).job_finished(27))
    assert f.productive_seconds == pytest.approx(10)  # steps 1-5 of attempt 0, 6-10 of attempt 2
    # Lost: attempt 0's steps 6-7 and partial 8 (2.3 s), attempt 1's steps 6-7 and partial 8 (2.5 s).
    assert_badput(f.badput, badput(startup=6, checkpoint_save=0.2, checkpoint_restore=1.0, lost_progress=4.8,
                                   scheduling_wait=3, other=2))
    assert f.steps_lost == 4
    assert f.recoveries == pytest.approx((6.5, 4.5))
    assert_accounts_for_elapsed(f)


def test_a_run_that_never_recovers() -> None:
    # Attempt 1 crashes in its start-up; the Job gives up.
    h = first_attempt_to_step_7(History()).fault(0, 9.5).pod_exited(0, 10, 137)
    events = h.pod_started(1, 12).pod_exited(1, 14, 1).job_finished(14, succeeded=False).history()
    f = figures(events, completed=False)
    assert (f.completed, f.productive_seconds) == (False, 0)
    assert f.elapsed_seconds == pytest.approx(14)
    # All training is lost: steps 1-7 (7 s less the 0.2 s save) and the partial step 8 (0.5 s).
    assert_badput(f.badput, badput(startup=4, checkpoint_save=0.2, lost_progress=7.3, scheduling_wait=2,
                                   other=0.5))
    # fault_outcomes says 7 steps lost (attempt 1 restored nothing); they are the 7 the run trained, counted once.
    assert fault_outcomes(events)[0].steps_lost == 7
    assert (f.steps_lost, f.recoveries, f.unrecovered) == (7, (), 1)
    assert_accounts_for_elapsed(f)


def test_a_run_whose_job_gives_up_after_the_fault_is_unrecovered() -> None:
    h = first_attempt_to_step_7(History()).fault(0, 9.5).pod_exited(0, 10, 137).job_finished(10, succeeded=False)
    f = figures(h, completed=False)
    assert (f.steps_lost, f.recoveries, f.unrecovered, f.productive_seconds) == (7, (), 1, 0)
    assert f.badput.lost_progress == pytest.approx(7.3)


def test_a_run_that_trained_but_failed_later_loses_all_its_training() -> None:
    f = figures(sigkill_resumed(), completed=False)  # e.g. the evaluation gate failed after training
    assert f.productive_seconds == 0
    assert f.badput.lost_progress == pytest.approx(12.3)  # all 12 computations and the partial step
    assert f.steps_lost == 2 + 10  # the interruption's 2, then the 10 steps reached
    assert_accounts_for_elapsed(f)


def test_checkpoint_save_and_restore_are_classified_and_not_counted_as_training() -> None:
    h = History().pod_started(0, 0).restored(0, 3, 1.5, 1.0).training_started(0, 2, start_step=3)
    h.steps(0, 4, 8, at=3)  # step k at k - 1
    h.saved(0, 5, 5.5, 1.0)  # a background save over half of step 6 (4 -> 5) and half of step 7 (5 -> 6)
    f = figures(h.completed(0, 7.5).pod_exited(0, 8).job_finished(8))
    assert f.productive_seconds == pytest.approx(4)  # 5 steps less the 1 s save
    assert_badput(f.badput, badput(startup=1, checkpoint_save=1, checkpoint_restore=1, other=1))
    assert_accounts_for_elapsed(f)


def test_a_save_longer_than_the_run_clamps_other_at_zero() -> None:
    h = uninterrupted()
    h.events = [replace(e, seconds=30.0) if isinstance(e, CheckpointSaved) and e.step == 10 else e
                for e in h.events]
    f = figures(h)
    # The 30 s save window covers the start-up and every step: they count nothing, never below 0.
    assert f.productive_seconds == 0
    assert_badput(f.badput, badput(checkpoint_save=30.5, scheduling_wait=2))
    assert f.productive_seconds + f.badput.total() > f.elapsed_seconds


def test_other_runs_in_the_history_do_not_count() -> None:
    alone = figures(sigkill_resumed())
    mixed = sigkill_resumed()
    beside = History(run_id=f"{RUN}-bf")  # a name that starts with the run's id
    beside.other_step("ingest", 10, 12)  # fills the run's scheduling gap if it were counted
    beside.pod_started(0, 3).training_started(0, 4).steps(0, 1, 3, at=5).fault(0, 7.5).pod_exited(0, 8, 137)
    backfill = History(run_id="backfill-2026-11-21")
    backfill.other_step("ingest", 11, 25).fault(0, 11.5, kind="node-drain")
    # A pod that printed nothing: only its labels say whose it is.
    silent: dict[str, Any] = dict(pod=f"{RUN}-bf-evaluate-a0", job=f"{RUN}-bf-evaluate", attempt=0)
    mixed.events += [*beside.events, *backfill.events,
                     PodStarted(ts=BASE + 10, node="n", pid=1, labels=f"run={RUN}-bf", **silent),
                     PodExited(ts=BASE + 30, node="n", exit_code=0, reason="Completed", **silent)]
    assert figures(mixed) == alone


def test_an_experiment_start_opens_the_run() -> None:
    h = sigkill_resumed()
    h.events.append(ExperimentStarted(ts=BASE - 1, experiment="gameday", run_id=RUN))
    f = figures(h)
    assert f.elapsed_seconds == pytest.approx(22)
    assert f.badput.scheduling_wait == pytest.approx(3)  # no container in the first second


def skewed(events: list[Event], offset: float) -> list[Event]:
    """The pipeline events as a pod whose clock is ``offset`` seconds ahead prints them, read at once."""
    def printed(e: Event) -> bool:  # pipeline events are the ones that name their run
        return "run_id" in {f.name for f in fields(e)} and not isinstance(e, ExperimentStarted)

    return [replace(e, ts=e.ts + offset, received=e.ts) if printed(e) else e for e in events]


def test_pod_clocks_are_placed_on_the_harness_clock() -> None:
    events = sigkill_resumed().history()
    shifted = skewed(events, 120.0)
    assert any(isinstance(e, TrainStep) and e.ts == e.received + 120 for e in shifted)
    assert figures(shifted) == figures(events)


# --- the night ---------------------------------------------------------------------------------------


def run(run_id: str, *, completed: bool, elapsed: float, productive: float, recoveries: tuple[float, ...] = (),
        **classes: float) -> RunFigures:
    return RunFigures(run_id=run_id, completed=completed, elapsed_seconds=elapsed, productive_seconds=productive,
                      badput=Badput(**classes), steps_lost=len(recoveries), recoveries=recoveries,
                      unrecovered=0 if completed else 1, faults={"pod-delete": len(recoveries)})


def test_night_figures_sum_the_runs_and_give_the_uncovered_time_to_scheduling_wait() -> None:
    runs = [
        run("r1", completed=True, elapsed=100, productive=60, recoveries=(3.0, 1.0), startup=10,
            checkpoint_save=5, lost_progress=10, scheduling_wait=5, other=10),
        run("r2", completed=False, elapsed=50, productive=0, recoveries=(2.0,), startup=5, lost_progress=40,
            other=5),
    ]
    runs.append(replace(runs[0], run_id="r3", faults={"node-drain": 1}, recoveries=(), steps_lost=0))
    n = night_figures(runs, elapsed_seconds=300)
    assert (n.runs_completed, n.runs_failed) == (2, 1)
    assert dict(n.faults) == {"node-drain": 1, "pod-delete": 3}
    assert (n.elapsed_seconds, n.productive_seconds) == (300, 120)
    assert n.goodput == pytest.approx(0.4)
    assert (n.steps_lost, n.unrecovered) == (3, 1)
    # 300 s of night, 250 s in runs: 50 s with no run at all.
    assert_badput(n.badput, badput(startup=25, checkpoint_save=10, lost_progress=60, scheduling_wait=60, other=25))
    assert (n.mttr_p50, n.mttr_p95, n.mttr_max) == (2.0, 3.0, 3.0)
    assert n.productive_seconds + n.badput.total() == pytest.approx(n.elapsed_seconds)


def test_night_figures_over_real_runs_account_for_the_night() -> None:
    runs = [figures(sigkill_resumed()), figures(graceful()), figures(uninterrupted())]
    n = night_figures(runs, elapsed_seconds=70)
    assert n.badput.scheduling_wait == pytest.approx(2 + 1 + 2 + (70 - 21 - 16.5 - 23))
    assert n.mttr_p50 == pytest.approx(5.3) and n.mttr_max == pytest.approx(6.5)
    assert n.productive_seconds + n.badput.total() == pytest.approx(70)
    assert all(getattr(n.badput, name) >= 0 for name in BADPUT_CLASSES)


def test_an_empty_night() -> None:
    n = night_figures([], elapsed_seconds=0)
    assert (n.goodput, n.mttr_p50, n.mttr_p95, n.mttr_max, n.runs_completed) == (0.0, None, None, None, 0)
    assert n.badput == Badput()


def test_runs_longer_than_the_night_add_no_negative_wait() -> None:
    n = night_figures([run("r1", completed=True, elapsed=100, productive=100)], elapsed_seconds=90)
    assert n.badput.scheduling_wait == 0


# --- percentiles -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("q", "expected"), [(0, 1), (5, 1), (50, 10), (95, 19), (96, 20), (100, 20)])
def test_nearest_rank_percentile_of_one_to_twenty(q: float, expected: float) -> None:
    values = [float(v) for v in range(20, 0, -1)]  # unordered on purpose
    assert percentile(values, q) == expected


def test_percentile_of_few_values() -> None:
    assert percentile([], 50) is None
    assert percentile([4.0], 95) == 4.0
    assert (percentile([1.0, 2.0], 50), percentile([1.0, 2.0], 51)) == (1.0, 2.0)


@pytest.mark.parametrize("q", [-1, 101])
def test_percentile_outside_zero_to_hundred_is_refused(q: float) -> None:
    with pytest.raises(ValueError):
        percentile([1.0], q)
