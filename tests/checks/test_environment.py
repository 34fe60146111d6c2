"""environment-pinned on hand-built histories: pass, fail, unknown."""

from __future__ import annotations

from harness.checks.environment import check_environment
from harness.history.events import (
    CheckpointRestored,
    CheckpointSaved,
    EnvironmentRefused,
    EnvironmentReported,
    Event,
)

RUN = "r1"
OLD, NEW = "a" * 64, "b" * 64


def env(job: str, attempt: int, fingerprint: str, run_id: str = RUN) -> EnvironmentReported:
    return EnvironmentReported(ts=float(attempt), pod=f"{job}-{attempt}", job=job, attempt=attempt, run_id=run_id,
                               fingerprint=fingerprint, details={})


def saved(attempt: int, step: int = 30) -> CheckpointSaved:
    return CheckpointSaved(ts=attempt + 0.5, pod=f"train-{attempt}", job="train", attempt=attempt, run_id=RUN,
                           step=step, manifest_key=f"ck/{step}", seconds=0.1, bytes=1, reason="sigterm")


def restored(attempt: int, step: int = 30) -> CheckpointRestored:
    return CheckpointRestored(ts=attempt + 0.2, pod=f"train-{attempt}", job="train", attempt=attempt, run_id=RUN,
                              step=step, manifest_key=f"ck/{step}", seconds=0.1)


def refused(attempt: int) -> EnvironmentRefused:
    return EnvironmentRefused(ts=attempt + 0.3, pod=f"train-{attempt}", job="train", attempt=attempt, run_id=RUN,
                              step=30, fingerprint=NEW, checkpoint_fingerprint=OLD,
                              differing="image_digest,torch_float32_matmul_precision")


def test_every_attempt_with_one_fingerprint_passes() -> None:
    # Steps differ from each other (features does not import torch): only attempts of one step are compared.
    events: list[Event] = [env("features", 0, "c" * 64), env("train", 0, OLD), saved(0), env("train", 1, OLD),
                           restored(1)]
    result = check_environment(events, run_id=RUN)
    assert result.verdict == "pass", result.evidence
    assert result.evidence == ("train: 2 attempts, one fingerprint aaaaaaaaaaaa",)


def test_a_refusal_across_a_change_passes() -> None:
    events: list[Event] = [env("train", 0, OLD), saved(0), env("train", 1, NEW), refused(1), env("train", 2, NEW),
                           refused(2)]
    result = check_environment(events, run_id=RUN)
    assert result.verdict == "pass", result.evidence
    assert "attempt 1 of train refused to resume step 30 (differing: image_digest,torch_float32_matmul_precision)" \
        in result.evidence


def test_a_silent_resume_across_a_change_fails() -> None:
    events: list[Event] = [env("train", 0, OLD), saved(0), env("train", 1, NEW), restored(1)]
    result = check_environment(events, run_id=RUN)
    assert result.verdict == "fail", result.evidence
    assert result.evidence == ("attempt 1 of train resumed step 30 (ck/30) under fingerprint bbbbbbbbbbbb, written "
                               "under aaaaaaaaaaaa: a silent resume across an environment change",)


def test_a_resume_of_a_checkpoint_saved_outside_the_history_is_compared_with_the_previous_attempt() -> None:
    events: list[Event] = [env("train", 0, OLD), env("train", 1, NEW), restored(1, step=10)]
    assert check_environment(events, run_id=RUN).verdict == "fail"


def test_a_silent_resume_fails_even_when_another_attempt_refused() -> None:
    events: list[Event] = [env("train", 0, OLD), saved(0), env("train", 1, NEW), refused(1), env("train", 2, NEW),
                           restored(2)]
    assert check_environment(events, run_id=RUN).verdict == "fail"


def test_unknown_with_fewer_than_two_attempts_or_no_fingerprints() -> None:
    assert check_environment([env("train", 0, OLD), saved(0)], run_id=RUN).verdict == "unknown"
    assert check_environment([saved(0), restored(1)], run_id=RUN).verdict == "unknown"
    other_run = [env("train", 0, OLD, run_id="other"), env("train", 1, NEW, run_id="other")]
    assert check_environment(other_run, run_id=RUN).verdict == "unknown"


def test_unknown_when_the_environment_changed_but_nothing_resumed_or_refused() -> None:
    result = check_environment([env("train", 0, OLD), env("train", 1, NEW)], run_id=RUN)
    assert result.verdict == "unknown", result.evidence
    assert "nothing shows how the pipeline handles drift" in result.evidence[-1]
