"""preemption-checkpointed on hand-built histories: pass, fail, unknown, and the too-short window."""

from __future__ import annotations

from harness.checks.preemption import check_preemption
from harness.history.events import (
    CheckpointRestored,
    CheckpointSaved,
    Event,
    FaultInjected,
    PodExited,
    PodStarted,
    SigtermReceived,
    TrainingStarted,
    TrainStep,
)

RUN, JOB = "r1", "r1-train"


def _p(attempt: int) -> dict[str, object]:
    return {"pod": f"{JOB}-{attempt}", "job": JOB, "attempt": attempt}


def history(*, notice: float, sigterm_save_at: float | None, save_seconds: float = 0.5, last_step: int = 47,
            restore: int | None = None, fault: str = "spot-preemption", hit_training: bool = True) -> list[Event]:
    """Attempt 0 trains steps 1..last_step (checkpoints every 10) on node-a; the fault comes at t=100; if
    ``sigterm_save_at`` is given, a sigterm checkpoint of ``last_step`` is saved at 100+that; attempt 1 on
    node-b restores ``restore`` (default: the sigterm save, else the last periodic one)."""
    events: list[Event] = [PodStarted(ts=1.0, node="node-a", pid=1, **_p(0))]  # type: ignore[arg-type]
    if hit_training:
        events.append(TrainingStarted(ts=2.0, run_id=RUN, start_step=0, total_steps=100, checkpoint_every=10, seed=7,
                                      device="cpu", **_p(0)))  # type: ignore[arg-type]
        for step in range(1, last_step + 1):
            events.append(TrainStep(ts=2.0 + step, run_id=RUN, step=step, loss=1.0, **_p(0)))  # type: ignore[arg-type]
            if step % 10 == 0:
                events.append(CheckpointSaved(ts=2.0 + step, run_id=RUN, step=step, manifest_key=f"ck/{step}",
                                              seconds=save_seconds, bytes=1, reason="periodic",
                                              **_p(0)))  # type: ignore[arg-type]
    events.append(FaultInjected(ts=100.0, fault=fault, fault_id=f"{fault}-1", target="node-a", detail="notice",
                                grace_period_seconds=notice, **_p(0)))  # type: ignore[arg-type]
    end = 100.0 + notice
    if hit_training:
        events.append(SigtermReceived(ts=100.1, run_id=RUN, step=last_step, **_p(0)))  # type: ignore[arg-type]
    if sigterm_save_at is not None:
        events.append(CheckpointSaved(ts=100.0 + sigterm_save_at, run_id=RUN, step=last_step,
                                      manifest_key=f"ck/{last_step}", seconds=save_seconds, bytes=1, reason="sigterm",
                                      **_p(0)))  # type: ignore[arg-type]
        end = 100.0 + sigterm_save_at + 0.1
    graceful = sigterm_save_at is not None and sigterm_save_at <= notice
    events.append(PodExited(ts=end, node="node-a", exit_code=143 if graceful else 137, reason="Evicted",
                            **_p(0)))  # type: ignore[arg-type]
    if restore is None:
        restore = last_step if sigterm_save_at is not None else last_step // 10 * 10
    events.append(PodStarted(ts=end + 1, node="node-b", pid=2, **_p(1)))  # type: ignore[arg-type]
    if hit_training:
        events.append(CheckpointRestored(ts=end + 2, run_id=RUN, step=restore, manifest_key=f"ck/{restore}",
                                         seconds=0.1, **_p(1)))  # type: ignore[arg-type]
        events.append(TrainStep(ts=end + 3, run_id=RUN, step=restore + 1, loss=1.0, **_p(1)))  # type: ignore[arg-type]
    return events


def test_a_checkpoint_inside_the_notice_resumed_elsewhere_passes() -> None:
    result = check_preemption(history(notice=30, sigterm_save_at=1.0))
    assert result.verdict == "pass", result.evidence
    assert "checkpointed step 47 on the notice" in result.evidence[0]
    assert "resumed on node-b from step 47; 0 step(s) lost" in result.evidence[0]


def test_no_checkpoint_in_a_long_enough_window_fails_with_the_steps_lost() -> None:
    result = check_preemption(history(notice=30, sigterm_save_at=None))
    assert result.verdict == "fail", result.evidence
    assert "no checkpoint saved on the notice although the window was long enough (a save takes 0.50 s)" \
        in result.evidence[0]
    assert "7 step(s) lost" in result.evidence[0]


def test_a_checkpoint_after_the_window_ended_does_not_count() -> None:
    result = check_preemption(history(notice=2, sigterm_save_at=5.0, restore=40))
    assert result.verdict == "fail", result.evidence


def test_a_notice_checkpoint_the_next_attempt_did_not_resume_fails() -> None:
    result = check_preemption(history(notice=30, sigterm_save_at=1.0, restore=40))
    assert result.verdict == "fail", result.evidence
    assert "did not resume it" in result.evidence[0] and "7 step(s) lost" in result.evidence[0]


def test_a_window_shorter_than_a_save_passes_within_one_interval_and_reports_the_loss() -> None:
    result = check_preemption(history(notice=0.2, sigterm_save_at=None, save_seconds=0.5))
    assert result.verdict == "pass", result.evidence
    assert "shorter than a checkpoint save (0.50 s)" in result.evidence[0]
    assert "7 step(s) lost" in result.evidence[0]


def test_a_window_shorter_than_a_save_fails_beyond_one_interval() -> None:
    result = check_preemption(history(notice=0.2, sigterm_save_at=None, save_seconds=0.5, restore=20))
    assert result.verdict == "fail", result.evidence
    assert "27 step(s) lost" in result.evidence[0]


def test_unknown_without_the_fault_or_when_it_hit_no_training() -> None:
    assert check_preemption(history(notice=30, sigterm_save_at=1.0, fault="node-drain")).verdict == "unknown"
    result = check_preemption(history(notice=30, sigterm_save_at=None, hit_training=False))
    assert result.verdict == "unknown", result.evidence
    assert "hit no training attempt" in result.evidence[0]


def test_unknown_when_no_later_attempt_started() -> None:
    events = [e for e in history(notice=30, sigterm_save_at=1.0) if e.attempt == 0]
    result = check_preemption(events)
    assert result.verdict == "unknown" and "no later attempt" in result.evidence[0], result.evidence
