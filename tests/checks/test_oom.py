"""``oom-recovered`` on hand-built histories: retried and resumed passes, a loop that never completes fails,
no OOM kill is unknown."""

from __future__ import annotations

from harness.checks.oom import NAME, check_oom
from harness.history.events import Event, PodExited, PodStarted
from tests.checks.histories import RUN, TrainingHistory


def _oom(h: TrainingHistory) -> TrainingHistory:
    """The current attempt ends as the kubelet reports a kernel OOM kill."""
    h.events.append(PodExited(ts=h._tick(), node="node-a", exit_code=137, reason="OOMKilled", pod=h.pod,
                              job="exp-1-train", attempt=h.attempt))
    return h


def transient() -> list[Event]:
    """OOM-killed at step 33 (checkpoint 30), retried from 30, completed."""
    h = TrainingHistory()
    _oom(h.start_attempt(restore=None).train(1, 33))
    h.start_attempt(restore=30).train(31, 100).complete()
    return h.end()


def test_an_oom_kill_retried_from_its_checkpoint_and_completed_passes() -> None:
    result = check_oom(transient(), run_id=RUN)
    assert result.name == NAME and result.verdict == "pass", result.evidence
    assert result.evidence[0].startswith("transient: 1 OOM kill(s) at step(s) 33")
    assert "resumed from step 30" in result.evidence[1] and "node-a" in result.evidence[1]


def test_a_loop_the_run_got_out_of_passes_and_is_named_a_loop() -> None:
    h = TrainingHistory()
    _oom(h.start_attempt(restore=None).train(1, 33))
    _oom(h.start_attempt(restore=30).train(31, 33))
    h.start_attempt(restore=30).train(31, 100).complete()
    result = check_oom(h.end(), run_id=RUN)
    assert result.verdict == "pass", result.evidence
    assert result.evidence[0] == "OOM loop: 2 attempts killed at the same step 33"


def test_an_oom_loop_that_never_completes_fails() -> None:
    h = TrainingHistory()
    _oom(h.start_attempt(restore=None).train(1, 33))
    _oom(h.start_attempt(restore=30).train(31, 33))
    _oom(h.start_attempt(restore=30).train(31, 33))
    result = check_oom(h.end(status="failed"), run_id=RUN)
    assert result.verdict == "fail", result.evidence
    assert result.evidence[0].startswith("OOM loop: 3 attempts")
    assert "never retried" in result.evidence[3]
    assert result.evidence[-1] == ("training never completed after the last OOM kill "
                                   "(the OOM loop kept the run from progressing)")


def test_a_retry_that_starts_afresh_despite_a_checkpoint_fails() -> None:
    h = TrainingHistory()
    _oom(h.start_attempt(restore=None).train(1, 33))
    h.start_attempt(restore=None).train(1, 100).complete()
    result = check_oom(h.end(), run_id=RUN)
    assert result.verdict == "fail"
    assert "restored nothing (started from step 0), not the latest checkpoint" in result.evidence[1]


def test_a_kill_before_any_checkpoint_may_start_from_zero() -> None:
    h = TrainingHistory()
    _oom(h.start_attempt(restore=None).train(1, 5))
    h.start_attempt(restore=None).train(1, 100).complete()
    result = check_oom(h.end(), run_id=RUN)
    assert result.verdict == "pass", result.evidence
    assert "step 0 (no checkpoint yet)" in result.evidence[1]


def test_no_oom_kill_is_unknown() -> None:
    h = TrainingHistory()
    h.start_attempt(restore=None).train(1, 100).complete()
    result = check_oom(h.end(), run_id=RUN)
    assert result.verdict == "unknown"
    assert "the fault did not act" in result.evidence[0]


def test_an_oom_kill_of_another_run_is_not_judged() -> None:
    result = check_oom(transient(), run_id="another-run")
    assert result.verdict == "unknown"
    assert "none of them training run another-run" in result.evidence[0]


def test_kills_with_no_new_checkpoint_between_them_are_a_loop() -> None:
    """Each retry restored checkpoint 30 and died before saving another, at different steps."""
    h = TrainingHistory()
    _oom(h.start_attempt(restore=None).train(1, 33))
    _oom(h.start_attempt(restore=30).train(31, 31))
    h.start_attempt(restore=30).train(31, 100).complete()
    result = check_oom(h.end(), run_id=RUN)
    assert result.verdict == "pass", result.evidence
    assert result.evidence[0] == ("OOM loop: 2 attempts killed (at steps 33, 31) with no new checkpoint between "
                                  "them (latest 30)")


def test_kills_with_progress_between_them_are_transient() -> None:
    h = TrainingHistory()
    _oom(h.start_attempt(restore=None).train(1, 33))
    _oom(h.start_attempt(restore=30).train(31, 57))
    h.start_attempt(restore=50).train(51, 100).complete()
    result = check_oom(h.end(), run_id=RUN)
    assert result.verdict == "pass", result.evidence
    assert result.evidence[0] == "transient: 2 OOM kill(s) at step(s) 33, 57"


def test_a_retry_killed_before_it_started_training_counts_and_makes_a_loop() -> None:
    """The first retry is OOM-killed while it starts (no training_started): the same job, no new checkpoint."""
    h = TrainingHistory()
    _oom(h.start_attempt(restore=None).train(1, 33))
    h.attempt += 1
    h.events.append(PodStarted(ts=h._tick(), node="node-a", pid=7, pod=h.pod, job="exp-1-train", attempt=h.attempt))
    _oom(h)
    h.start_attempt(restore=30).train(31, 100).complete()
    result = check_oom(h.end(), run_id=RUN)
    assert result.verdict == "pass", result.evidence
    assert result.evidence[0].startswith("OOM loop: 2 attempts killed (at steps 33, (before training))")
    assert "OOM-killed before it started training" in result.evidence[2]
