"""``checkpoint-integrity`` on hand-built histories: pass, fail and unknown."""

from __future__ import annotations

from harness.checks.checkpoint_integrity import check_checkpoint_integrity
from harness.evidence.reference import ReferenceRun
from harness.history.events import (
    CheckpointRejected,
    CheckpointRestored,
    CheckpointSaved,
    Event,
    FaultHealed,
    FaultInjected,
    JobFinished,
    TrainingCompleted,
)

RUN = "exp-1"
JOB = "exp-1-train"
SHA = "a" * 64
REFERENCE = ReferenceRun(params_sha256=SHA)
COMPONENTS = {"parameters": "p", "optimizer": "o", "rng_torch": "r"}


def key(step: int) -> str:
    return f"runs/reference/2026-11-21/{RUN}/checkpoints/step-{step:06d}/MANIFEST.json"


def saved(step: int, ts: float) -> CheckpointSaved:
    return CheckpointSaved(ts=ts, pod="p0", job=JOB, run_id=RUN, step=step, manifest_key=key(step), seconds=0.1,
                           bytes=100, reason="periodic", components={k: f"{v}{step}" for k, v in COMPONENTS.items()})


def fault(step: int = 200) -> FaultInjected:
    return FaultInjected(ts=30.0, pod="p0", job=JOB, fault="checkpoint-corruption", fault_id="checkpoint-corruption-1",
                         target=key(step), detail="flip", grace_period_seconds=0.0)


def restored(step: int, *, components: dict[str, str] | None = None, manifest_key: str = "") -> CheckpointRestored:
    return CheckpointRestored(ts=40.0, pod="p1", job=JOB, attempt=1, run_id=RUN, step=step,
                              manifest_key=manifest_key or key(step), seconds=0.1,
                              components=components if components is not None
                              else {k: f"{v}{step}" for k, v in COMPONENTS.items()})


def rejected(step: int = 200) -> CheckpointRejected:
    return CheckpointRejected(ts=39.0, pod="p1", job=JOB, attempt=1, run_id=RUN, step=step, manifest_key=key(step),
                              reason="state sha256 differs from the manifest's")


def completed(sha: str = SHA) -> TrainingCompleted:
    return TrainingCompleted(ts=90.0, pod="p1", job=JOB, attempt=1, run_id=RUN, step=1000, params_sha256=sha)


def before() -> list[Event]:
    return [saved(100, 10.0), saved(200, 20.0), fault()]


def judge(events: list[Event], reference: ReferenceRun | None = REFERENCE) -> tuple[str, tuple[str, ...]]:
    result = check_checkpoint_integrity(events, run_id=RUN, reference=reference, weight=3.0)
    assert result.weight == 3.0 and result.name == "checkpoint-integrity"
    return result.verdict, result.evidence


def test_pass_rejected_and_fell_back_to_the_previous_checkpoint_bit_identical() -> None:
    verdict, evidence = judge([*before(), rejected(), restored(100), completed()])
    assert verdict == "pass", evidence
    assert "p1 rejected it (state sha256 differs" in evidence[0] and key(100) in evidence[0]
    assert "step-200" in evidence[0] and "all 3 state components as saved" in evidence[0]
    assert "bit-identical" in evidence[1]


def test_fail_when_the_corrupted_checkpoint_was_restored() -> None:
    verdict, evidence = judge([*before(), restored(200, components={"parameters": "garbage"}), completed("b" * 64)])
    assert verdict == "fail"
    assert "restored it anyway" in evidence[0] and key(200) in evidence[0]
    assert "differ from the uninterrupted run's" in evidence[1]


def test_fail_when_its_bare_state_object_was_restored() -> None:
    state = key(200).replace("MANIFEST.json", "state.pt")
    verdict, evidence = judge([*before(), restored(200, manifest_key=state), completed()])
    assert verdict == "fail" and "restored it anyway" in evidence[0]


def test_fail_when_restored_state_differs_from_what_was_saved() -> None:
    bad = {"parameters": "p100", "optimizer": "flipped", "rng_torch": "r100"}
    verdict, evidence = judge([*before(), rejected(), restored(100, components=bad), completed()])
    assert verdict == "fail" and "optimizer differing from what was saved" in evidence[0]


def test_fail_when_restoring_crashed_and_the_job_failed() -> None:
    verdict, evidence = judge([*before(), JobFinished(ts=80.0, job=JOB, succeeded=False, failures=4)])
    assert verdict == "fail" and "job exp-1-train failed (4 failures)" in evidence[0]


def test_fail_when_the_fallback_skipped_the_previous_complete_checkpoint() -> None:
    events = [saved(100, 5.0), saved(150, 8.0), saved(200, 20.0), fault(), rejected(), restored(100), completed()]
    verdict, evidence = judge(events)
    assert verdict == "fail" and "not the previous complete checkpoint, step 150" in evidence[0]
    verdict, evidence = judge([*before(), rejected(), completed()])
    assert verdict == "fail" and "restored nothing, though step 100" in evidence[0]


def test_fail_when_the_run_did_not_end_bit_identical() -> None:
    verdict, evidence = judge([*before(), rejected(), restored(100), completed("c" * 64)])
    assert verdict == "fail" and evidence[0].startswith("checkpoint-corruption-1") and "differ" in evidence[1]


def test_unknown_without_a_corruption_fault() -> None:
    verdict, evidence = judge([saved(100, 10.0), restored(100), completed()])
    assert verdict == "unknown" and "no checkpoint-corruption fault" in evidence[0]
    other_run = FaultInjected(ts=30.0, fault="checkpoint-corruption", fault_id="f",
                              target="runs/x/other/c/MANIFEST.json", detail="")
    assert judge([saved(100, 10.0), other_run, completed()])[0] == "unknown"


def test_unknown_when_no_restore_followed_the_fault() -> None:
    verdict, evidence = judge([*before(), completed()])
    assert verdict == "unknown" and "verification was not exercised" in evidence[0]


def test_unknown_when_a_newer_checkpoint_made_the_damage_moot() -> None:
    healed = FaultHealed(ts=31.0, fault="checkpoint-corruption", fault_id="checkpoint-corruption-1",
                         detail=f"removed ...; missed: {key(300)} completed after the damage, so a restore uses it")
    verdict, evidence = judge([*before(), saved(300, 30.5), healed, restored(300), completed()])
    assert verdict == "unknown" and "not exercised" in evidence[0] and key(300) in evidence[0]


def test_unknown_without_a_rejection_event_or_a_reference() -> None:
    verdict, evidence = judge([*before(), restored(100), completed()])
    assert verdict == "unknown" and "reported no checkpoint_rejected" in evidence[0]
    verdict, evidence = judge([*before(), rejected(), restored(100), completed()], reference=None)
    assert verdict == "unknown" and "no uninterrupted reference" in evidence[1]
    verdict, evidence = judge([*before(), rejected(), restored(100)])
    assert verdict == "unknown" and "never reported training_completed" in evidence[1]
