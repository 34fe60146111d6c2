"""The churn example pipeline (examples/churn), its steps run as real processes against moto S3."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from harness.workload.declaration import load_workload

from .conftest import CHECKPOINT_EVERY, CHURN, TRAIN_STEPS, Churn, Finished, parse_events, read_until_step

STEPS = ("prepare", "train", "evaluate", "publish")


def final_params(train: Finished) -> str:
    done = train.of("training_completed")
    assert done, f"training did not complete (exit {train.code}): {train.stderr[-2000:]}"
    return str(done[-1]["params_sha256"])


def test_an_uninterrupted_run_trains_evaluates_and_publishes_each_artifact_once(
        churn: Churn, uninterrupted: dict[str, Finished]) -> None:
    train = uninterrupted["train"]
    assert [e["step"] for e in train.of("train_step")] == list(range(1, TRAIN_STEPS + 1))
    saved = train.of("checkpoint_saved")
    assert [(e["step"], e["reason"]) for e in saved] == [(50, "periodic"), (100, "periodic"), (150, "periodic"),
                                                         (200, "final")]
    assert all({"parameters", "optimizer", "scheduler", "rng_torch", "data_position"} <= set(e["components"])
               for e in saved)
    assert [e["step"] for e in train.of("digest_trail")] == [50, 100, 150, 200]
    assert len(final_params(train)) == 64
    assert uninterrupted["evaluate"].of("evaluated")[0]["passed"] is True
    assert uninterrupted["publish"].of("model_registered")[0]["created"] is True
    for step in STEPS:
        assert uninterrupted[step].of("environment"), f"{step} reported no environment"
    layout = load_workload(CHURN / "pipeline.yaml").layout
    keys = [key for key, _ in churn.versions("churn/")]
    assert [k for k in keys if layout.match(k) is None] == [], "keys the declared layout does not cover"
    immutable = [k for k in keys if not layout.match(k).rule.mutable]  # type: ignore[union-attr]
    assert len(immutable) == len(set(immutable)), "an artifact key has several versions"
    assert "churn/models/uninterrupted/model.pt" in keys
    live = churn.s3().list_objects_v2(Bucket=churn.bucket, Prefix="churn/runs/uninterrupted/").get("Contents", [])
    assert "churn/runs/uninterrupted/train.lock" not in [o["Key"] for o in live], "the lock was not released"


def test_re_running_every_step_is_an_idempotent_skip(churn: Churn, uninterrupted: dict[str, Finished]) -> None:
    before = churn.versions()
    for step in STEPS:
        again = churn.run(step, "uninterrupted")
        assert again.code == 0, again.stderr[-2000:]
        assert again.of("step_skipped"), f"{step} re-ran instead of skipping"
        assert not again.of("artifact_written")
    assert churn.versions() == before, "a re-run step wrote objects"


def test_sigterm_saves_the_current_step_and_the_next_attempt_resumes_bit_identical(
        churn: Churn, uninterrupted: dict[str, Finished]) -> None:
    first = churn.interrupt_train("sigterm", pod="sigterm-1", at_step=70, sig=signal.SIGTERM)
    assert first.code == 143, first.stderr[-2000:]
    term = first.of("sigterm_received")
    last = first.of("checkpoint_saved")[-1]
    assert term and last["reason"] == "sigterm" and last["step"] == term[0]["step"] >= 70
    second = churn.run("train", "sigterm", pod="sigterm-2")
    assert second.code == 0, second.stderr[-2000:]
    restored = second.of("checkpoint_restored")
    assert [(e["step"], e["manifest_key"]) for e in restored] == [(last["step"], last["manifest_key"])]
    assert restored[0]["components"] == last["components"], "what was restored differs from what was saved"
    assert second.of("train_step")[0]["step"] == last["step"] + 1, "steps were lost or repeated"
    assert final_params(second) == final_params(uninterrupted["train"])


def test_sigkill_loses_at_most_one_interval_and_ends_bit_identical(
        churn: Churn, uninterrupted: dict[str, Finished]) -> None:
    first = churn.interrupt_train("sigkill", pod="sigkill-1", at_step=130, sig=signal.SIGKILL)
    assert first.code == -signal.SIGKILL
    last_step = max(e["step"] for e in first.of("train_step"))
    latest = max(e["step"] for e in first.of("checkpoint_saved"))
    second = churn.run("train", "sigkill", pod="sigkill-2")  # waits for the dead attempt's lock to go stale
    assert second.code == 0, second.stderr[-2000:]
    restored = second.of("checkpoint_restored")[0]["step"]
    assert restored == latest and last_step - restored <= CHECKPOINT_EVERY
    assert final_params(second) == final_params(uninterrupted["train"])


def test_a_replacement_waits_for_the_terminating_attempt_and_restores_its_sigterm_checkpoint(churn: Churn) -> None:
    # Long enough that the old attempt is still training once the replacement has started up.
    steps = {"TRAIN_STEPS": "800"}
    old = churn.start_train("handoff", pod="handoff-old", **steps)
    new: subprocess.Popen[str] | None = None
    try:
        lines = read_until_step(old, 1)
        new = churn.start_train("handoff", pod="handoff-new", **steps)  # as Kubernetes does while old terminates
        assert new.stderr is not None
        assert "waiting for the training lock" in new.stderr.readline()
        old.send_signal(signal.SIGTERM)
        out, _ = old.communicate(timeout=120)
        new_out, new_err = new.communicate(timeout=180)
    finally:
        for proc in (old, new):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    assert old.returncode == 143 and new.returncode == 0, new_err[-2000:]
    sigterm_save = Finished(143, parse_events("".join(lines) + out)).of("checkpoint_saved")[-1]
    assert sigterm_save["reason"] == "sigterm"
    resumed = Finished(0, parse_events(new_out))
    assert resumed.of("checkpoint_restored")[0]["step"] == sigterm_save["step"]
    assert resumed.of("training_completed")


def test_careless_variant_checkpoints_to_the_pods_disk_and_overwrites_the_model(careless: Churn) -> None:
    results = careless.run_all("careless")
    saved = results["train"].of("checkpoint_saved")
    scratch = careless.pods.resolve()
    assert saved and all(Path(e["manifest_key"]).resolve().is_relative_to(scratch) for e in saved)
    assert all(Path(e["manifest_key"]).is_file() for e in saved)
    assert not [k for k, _ in careless.versions() if "/checkpoints/" in k], "checkpoints reached S3"
    model = "churn/models/current/model.pt"  # the serving path every careless publish overwrites
    assert len(careless.versions(model)) == 1
    again = careless.run("publish", "careless")
    assert again.code == 0, again.stderr[-2000:]
    assert len(careless.versions(model)) == 2, "the next careless publish overwrites the served model"
    assert len(careless.versions("churn/registry/")) == 1, "the registry itself stays conditional"


def test_careless_variant_loses_its_checkpoints_when_the_pod_moves(careless: Churn) -> None:
    assert careless.run("prepare", "careless-moved").code == 0
    first = careless.interrupt_train("careless-moved", pod="moved-1", at_step=70, sig=signal.SIGTERM)
    assert first.code == 143 and first.of("checkpoint_saved")[-1]["reason"] == "sigterm"
    second = careless.run("train", "careless-moved", pod="moved-2")  # a new pod: a new, empty TMPDIR
    assert second.code == 0, second.stderr[-2000:]
    assert not second.of("checkpoint_restored")
    assert second.of("training_started")[0]["start_step"] == 0


def test_careless_declaration_runs_the_same_code_with_the_bugs_switched_on_and_the_same_layout() -> None:
    good = load_workload(CHURN / "pipeline.yaml")
    bad = load_workload(CHURN / "careless" / "pipeline.yaml")
    assert [Path(s.command[-1]).resolve() for s in bad.steps] == [Path(s.command[-1]).resolve() for s in good.steps]
    assert all(s.env.get("CARELESS") == "1" for s in bad.steps)
    assert not any("CARELESS" in s.env for s in good.steps)
    assert [r.pattern.pattern for r in bad.layout.rules] == [r.pattern.pattern for r in good.layout.rules]
    assert bad.layout.match("churn-careless/models/r1/model.pt") is not None
