from __future__ import annotations

from dataclasses import replace

from harness.checks.interruptions import fault_outcomes
from harness.checks.resume import check_resume
from harness.evidence.inventory import Inventory
from harness.evidence.reference import ReferenceRun
from harness.history.events import (
    CheckpointRestored,
    CheckpointSaved,
    DigestTrail,
    Event,
    PodExited,
    PodStarted,
    TrainingCompleted,
    TrainStep,
)
from tests.checks.histories import JOB, RUN, SHA, TrainingHistory, graceful_then_forced, reference


def verdict(events, sha=SHA):
    return check_resume(events, run_id=RUN, reference=reference(sha))


def test_graceful_and_forced_kills_that_resume_correctly_pass():
    result = verdict(graceful_then_forced())
    assert result.verdict == "pass", result.evidence
    assert any("bit-identical" in line for line in result.evidence)


def test_outcomes_measure_steps_lost_and_recovery():
    graceful, forced = fault_outcomes(graceful_then_forced())
    assert (graceful.graceful, graceful.restored_step, graceful.steps_lost) == (True, 25, 0)
    assert (forced.graceful, forced.latest_checkpoint, forced.restored_step, forced.steps_lost) == (False, 40, 40, 7)
    assert forced.recovery_seconds is not None and forced.recovery_seconds > 0


def test_restarting_from_step_zero_fails():
    result = verdict(graceful_then_forced(restore_after_kill=None))
    assert result.verdict == "fail"
    assert any("restored nothing" in line for line in result.evidence)


def test_restoring_an_older_checkpoint_than_the_latest_fails():
    result = verdict(graceful_then_forced(restore_after_kill=30))
    assert result.verdict == "fail"
    assert any("latest complete checkpoint was step 40" in line for line in result.evidence)


def test_losing_steps_after_sigterm_fails():
    h = TrainingHistory()
    # SIGTERM honoured (exit 143) but no checkpoint on the way out: steps 21-25 are lost.
    h.start_attempt(restore=None).train(1, 25).kill(grace=30, exit_code=143).exited(143)
    h.start_attempt(restore=20).train(21, 100).complete()
    result = verdict(h.end())
    assert result.verdict == "fail"
    assert any("told to stop at step 25" in line and "saved no checkpoint" in line and "5 steps lost" in line
               for line in result.evidence), result.evidence


def test_losing_more_than_one_interval_after_sigkill_fails():
    h = TrainingHistory(checkpoint_every=10)
    # Periodic checkpoints missing after step 10: SIGKILL at 35 loses 25 > 10 steps.
    h.start_attempt(restore=None).train(1, 10).train(11, 35, checkpoints=False).kill(grace=0, exit_code=137).exited(137)
    h.start_attempt(restore=10).train(11, 100).complete()
    result = verdict(h.end())
    assert result.verdict == "fail"


def test_different_final_parameters_fail():
    result = verdict(graceful_then_forced(sha="b" * 64))
    assert result.verdict == "fail"
    assert any("differ" in line for line in result.evidence)


def test_no_resumption_after_a_kill_fails():
    h = TrainingHistory()
    h.start_attempt(restore=None).train(1, 25).kill(grace=0, exit_code=137).exited(137)
    assert verdict(h.end()).verdict == "fail"


def test_no_interruption_is_unknown_not_pass():
    h = TrainingHistory()
    h.start_attempt(restore=None).train(1, 100).complete()
    result = verdict(h.end())
    assert result.verdict == "unknown"


def test_without_requiring_an_interruption_the_end_alone_is_judged():
    h = TrainingHistory()
    h.start_attempt(restore=None).train(1, 100).complete()
    events = h.end()
    judged = check_resume(events, run_id=RUN, reference=reference(SHA), require_interruption=False)
    assert judged.verdict == "pass", judged.evidence
    assert "resumption was not exercised" in judged.evidence[0]
    other = check_resume(events, run_id=RUN, reference=reference("0" * 64), require_interruption=False)
    assert other.verdict == "fail", other.evidence
    unknown = check_resume(events, run_id=RUN, reference=reference(None), require_interruption=False)
    assert unknown.verdict == "unknown"


def test_missing_reference_is_unknown():
    assert verdict(graceful_then_forced(), sha=None).verdict == "unknown"


def test_missing_final_hash_is_unknown():
    h = TrainingHistory()
    h.start_attempt(restore=None).train(1, 25).kill(grace=30, exit_code=143)
    h.checkpoint(25, reason="sigterm").exited(143)
    h.start_attempt(restore=25).train(26, 60)
    assert verdict(h.end()).verdict == "unknown"


def test_a_fault_that_missed_training_is_not_an_interruption():
    h = TrainingHistory()
    h.start_attempt(restore=None).train(1, 100).complete()
    events = h.end()
    assert [o.hit_training for o in fault_outcomes(events)] == []


def _overlapping(*, replacement_restores_before_old_exits: bool) -> list[Event]:
    """Kubernetes replaces a deleted pod at once: the new pod starts while the old one still saves its
    SIGTERM checkpoint. A fenced pipeline restores only after the old attempt ended."""
    h = TrainingHistory()
    h.start_attempt(restore=None).train(1, 25).kill(grace=30, exit_code=143)
    old = dict(pod=h.pod, job=JOB, attempt=h.attempt)
    new = dict(pod=f"{JOB}-replacement", job=JOB, attempt=h.attempt + 1)
    h.events.append(PodStarted(ts=h._tick(), node="node-b", pid=200, **new))
    if replacement_restores_before_old_exits:
        h.events.append(CheckpointRestored(ts=h._tick(), run_id=RUN, step=20, manifest_key="ck/20", seconds=0.01,
                                           **new))
    h.checkpoint(25, reason="sigterm")
    h.events.append(PodExited(ts=h._tick(), node="node-a", exit_code=143, reason="Error", **old))
    restored = 20 if replacement_restores_before_old_exits else 25
    if not replacement_restores_before_old_exits:
        h.events.append(CheckpointRestored(ts=h._tick(), run_id=RUN, step=25, manifest_key="ck/25", seconds=0.01,
                                           **new))
    for step in range(restored + 1, 101):
        h.events.append(TrainStep(ts=h._tick(), run_id=RUN, step=step, loss=1.0, **new))
    h.events.append(TrainingCompleted(ts=h._tick(), run_id=RUN, step=100, params_sha256=SHA, **new))
    return h.end()


def test_a_replacement_that_started_early_but_restored_after_the_old_attempt_ended_passes() -> None:
    result = check_resume(_overlapping(replacement_restores_before_old_exits=False), run_id=RUN, reference=reference())
    assert result.verdict == "pass", result.evidence
    assert f"{JOB}-replacement restored step 25" in result.evidence[0]


def test_a_replacement_that_restored_while_the_old_attempt_still_saved_fails() -> None:
    result = check_resume(_overlapping(replacement_restores_before_old_exits=True), run_id=RUN, reference=reference())
    assert result.verdict == "fail"
    assert "restored step 20, but the latest complete checkpoint was step 25" in result.evidence[0]


def test_a_container_restarted_in_place_is_a_new_attempt_of_the_same_pod() -> None:
    h = TrainingHistory()
    h.start_attempt(restore=None).train(1, 27).kill(grace=0, exit_code=137).exited(137)
    pod = h.pod
    h.start_attempt(restore=20)
    h.events = [replace(e, pod=pod) if e.attempt == h.attempt else e for e in h.events]  # same pod, attempt 1
    for step in range(21, 101):
        h.events.append(TrainStep(ts=h._tick(), run_id=RUN, step=step, loss=1.0, pod=pod, job=JOB, attempt=h.attempt))
    h.events.append(TrainingCompleted(ts=h._tick(), run_id=RUN, step=100, params_sha256=SHA, pod=pod, job=JOB,
                                      attempt=h.attempt))
    (outcome,) = fault_outcomes(h.end())
    assert (outcome.resumed_pod, outcome.restored_step, outcome.steps_lost) == (pod, 20, 7)
    assert outcome.recovery_seconds is not None


def with_components(events: list[Event], *, restored: dict[int, dict[str, str]]) -> list[Event]:
    """Every checkpoint saved with digests derived from its step; restores as ``restored`` says (else as saved)."""
    def saved(step: int) -> dict[str, str]:
        return {name: f"{name}-{step}" for name in ("parameters", "optimizer", "scheduler", "rng_torch")}

    out: list[Event] = []
    for e in events:
        if isinstance(e, CheckpointSaved):
            e = replace(e, components=saved(e.step))
        elif isinstance(e, CheckpointRestored):
            e = replace(e, components={**saved(e.step), **restored.get(e.step, {})})
        out.append(e)
    return out


def test_the_first_component_that_did_not_come_back_as_saved_is_named():
    events = with_components(graceful_then_forced(), restored={40: {"scheduler": "fresh", "rng_torch": "fresh"}})
    result = verdict(events)
    assert result.verdict == "fail"
    assert any("restored scheduler of step 40 differs from what was saved" in line for line in result.evidence)
    assert verdict(with_components(graceful_then_forced(), restored={})).verdict == "pass"


def test_the_step_where_the_trail_departs_from_the_uninterrupted_run_is_named():
    trail = {step: {"parameters": f"p{step}", "optimizer": f"o{step}"} for step in (50, 100)}
    events = [*graceful_then_forced(sha="b" * 64),
              DigestTrail(ts=5000.0, run_id=RUN, step=50, components=trail[50]),
              DigestTrail(ts=5001.0, run_id=RUN, step=100, components={**trail[100], "optimizer": "drifted"})]
    result = check_resume(events, run_id=RUN, reference=ReferenceRun(params_sha256=SHA, trail=trail))
    assert result.verdict == "fail"
    assert any("differ from the uninterrupted run's" in line and "departs" in line and "at step 100 (optimizer)"
               in line for line in result.evidence), result.evidence


def test_a_checkpoint_lost_with_the_pods_local_disk_is_named():
    h = TrainingHistory()
    h.start_attempt(restore=None).train(1, 25).kill(grace=30, exit_code=143).checkpoint(25, reason="sigterm")
    h.exited(143)
    h.start_attempt(restore=None).train(1, 100).complete()
    inventory = Inventory(bucket="b", taken_at=0.0, versions=(), versioned=True)
    result = check_resume(h.end(), run_id=RUN, reference=ReferenceRun(params_sha256=SHA), inventory=inventory)
    assert result.verdict == "fail"
    assert any("restored nothing" in line and "never reached the object store" in line and "local disk" in line
               for line in result.evidence), result.evidence


def test_a_trail_departure_that_left_the_parameters_identical_passes_and_is_reported():
    trail = {50: {"parameters": "p50", "rng_numpy": "n50"}}
    events = [*graceful_then_forced(), DigestTrail(ts=5000.0, run_id=RUN, step=50,
                                                   components={"parameters": "p50", "rng_numpy": "other"})]
    result = check_resume(events, run_id=RUN, reference=ReferenceRun(params_sha256=SHA, trail=trail))
    assert result.verdict == "pass"
    assert any("at step 50 (rng_numpy)" in line and "did not change the final parameters" in line
               for line in result.evidence)


def test_a_sigterm_without_a_later_checkpoint_is_not_graceful():
    h = TrainingHistory()
    # The periodic checkpoint at step 20 precedes the SIGTERM at step 23; the attempt exits 143 saving nothing.
    h.start_attempt(restore=None).train(1, 23).kill(grace=30, exit_code=143).exited(143)
    h.start_attempt(restore=20).train(21, 100).complete()
    (outcome,) = fault_outcomes(h.end())
    assert (outcome.graceful, outcome.exit_code, outcome.sigterm_step) == (False, 143, 23)
    result = verdict(h.events)
    assert result.verdict == "fail"
    assert any("stopped without a checkpoint after SIGTERM" in line for line in result.evidence), result.evidence


def test_a_checkpoint_at_a_local_path_is_named_lost_even_without_an_inventory():
    h = TrainingHistory()
    h.start_attempt(restore=None).train(1, 25).kill(grace=30, exit_code=143)
    h.events.append(CheckpointSaved(ts=h._tick(0.01), run_id=RUN, step=25, manifest_key="/tmp/pod-0/ckpt/25",
                                    seconds=0.01, bytes=1000, reason="sigterm", pod=h.pod, job=JOB, attempt=h.attempt))
    h.exited(143)
    h.start_attempt(restore=None).train(1, 100).complete()
    result = check_resume(h.end(), run_id=RUN, reference=ReferenceRun(params_sha256=SHA), inventory=None)
    assert result.verdict == "fail"
    assert any("/tmp/pod-0/ckpt/25" in line and "lost with the pod" in line for line in result.evidence)


def _killed_while_the_step_30_checkpoint_was_uploading(lost_beyond: int) -> list[Event]:
    """Checkpoints every 10; the one due at step 30 never completed; SIGKILL at 30 + ``lost_beyond``."""
    h = TrainingHistory(checkpoint_every=10)
    h.start_attempt(restore=None).train(1, 29).train(30, 30 + lost_beyond, checkpoints=False)
    h.kill(grace=0, exit_code=137).exited(137)
    h.start_attempt(restore=20).train(21, 100).complete()
    return h.end()


def test_a_kill_during_a_checkpoint_upload_may_lose_it_only_where_the_experiment_allows():
    events = _killed_while_the_step_30_checkpoint_was_uploading(lost_beyond=3)  # 13 steps lost > 10
    assert verdict(events).verdict == "fail"
    allowed = check_resume(events, run_id=RUN, reference=reference(), allow_inflight_checkpoint=True)
    assert allowed.verdict == "pass", allowed.evidence
    assert any("checkpoint of step 30 was still being written" in line for line in allowed.evidence)


def test_the_inflight_allowance_never_covers_a_checkpoint_missing_for_longer():
    h = TrainingHistory(checkpoint_every=10)
    # The checkpoints of 20 and 30 never completed: 25 steps lost is more than interval + steps since 30.
    h.start_attempt(restore=None).train(1, 10).train(11, 35, checkpoints=False).kill(grace=0, exit_code=137)
    h.exited(137).start_attempt(restore=10).train(11, 100).complete()
    assert check_resume(h.end(), run_id=RUN, reference=reference(), allow_inflight_checkpoint=True).verdict == "fail"


def test_a_kill_after_training_completed_is_not_an_interruption_of_training():
    h = TrainingHistory(checkpoint_every=10)
    h.start_attempt(restore=None).train(1, 100)
    h.events.append(TrainingCompleted(ts=h._tick(), run_id=RUN, step=100, params_sha256=SHA, pod=h.pod, job=JOB,
                                      attempt=h.attempt))
    h.kill(grace=30, exit_code=0).exited(0)  # killed while publishing; the next attempt skips training
    [outcome] = fault_outcomes(h.end())
    assert not outcome.hit_training


def test_a_sigterm_in_the_last_step_that_lets_training_complete_is_not_an_interruption():
    h = TrainingHistory(checkpoint_every=10)
    h.start_attempt(restore=None).train(1, 100)
    h.kill(grace=30, exit_code=0)  # the SIGTERM came first; the attempt still finished and reported it
    h.events.append(TrainingCompleted(ts=h._tick(), run_id=RUN, step=100, params_sha256=SHA, pod=h.pod, job=JOB,
                                      attempt=h.attempt))
    h.exited(0)
    [outcome] = fault_outcomes(h.end())
    assert not outcome.hit_training


def test_an_attempt_killed_mid_training_is_still_an_interruption():
    h = TrainingHistory(checkpoint_every=10)
    h.start_attempt(restore=None).train(1, 50)
    h.kill(grace=0, exit_code=137).exited(137)
    h.start_attempt(restore=50).train(51, 100).complete()
    [outcome] = fault_outcomes(h.end())
    assert outcome.hit_training
