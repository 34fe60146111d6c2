"""The reference pipeline, run as real processes against a moto S3 server."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request

import numpy as np
import pytest
from conftest import CHECKPOINT_EVERY, DATE, TRAIN_STEPS, Pipeline, Result, parse

from harness.lifecycle import free_port
from reference_pipeline import data
from reference_pipeline.model import auc
from reference_pipeline.s3 import Store

STEPS = ("ingest", "validate", "features", "train", "evaluate", "register")


def run_until(proc: subprocess.Popen[str], step: int) -> list[str]:
    """Read the process's stdout until it prints ``train_step`` >= ``step``."""
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        event = json.loads(line)
        if event["event"] == "train_step" and event["step"] >= step:
            return lines
    raise AssertionError(f"process ended before step {step}: {proc.wait()} {proc.stderr.read() if proc.stderr else ''}")


def finish(proc: subprocess.Popen[str], lines: list[str]) -> Result:
    stdout, stderr = proc.communicate(timeout=60)
    return Result(proc.returncode, parse("".join(lines) + stdout), stderr)


def final_sha(result: Result) -> str:
    assert result.code == 0, result.stderr
    return str(result.of("training_completed")[0]["params_sha256"])


def trail(result: Result) -> dict[int, dict[str, str]]:
    return {e["step"]: e["components"] for e in result.of("digest_trail")}


# --- the uninterrupted run and idempotent reruns ------------------------------


def test_uninterrupted_run_publishes_everything(baseline: dict[str, Result], prepared: Pipeline) -> None:
    train = baseline["train"]
    assert [e["step"] for e in train.of("train_step")] == list(range(1, TRAIN_STEPS + 1))
    expected = list(range(CHECKPOINT_EVERY, TRAIN_STEPS + 1, CHECKPOINT_EVERY))
    assert [e["step"] for e in train.of("checkpoint_saved")] == expected
    assert train.of("training_started")[0]["start_step"] == 0
    evaluated = baseline["evaluate"].of("evaluated")[0]
    assert evaluated["passed"] and 0.75 < evaluated["value"] < 0.95
    assert baseline["register"].of("model_registered")[0]["created"] is True
    assert prepared.keys("runs/reference/2024-03-01/base/model/") == ["runs/reference/2024-03-01/base/model/model.pt"]


def test_events_match_the_harness_contract(baseline: dict[str, Result]) -> None:
    events = pytest.importorskip("harness.history.events")
    for result in baseline.values():
        for raw in result.events:
            parsed = events.from_json(json.dumps(raw))
            assert parsed is not None and not isinstance(parsed, events.UnknownEvent), raw
            assert raw["event"] == parsed.KIND
            # pod, job, attempt and received are stamped by the harness when it reads the line.
            harness_side = {"pod", "job", "attempt", "received"}
            known = {f.name for f in events.dataclasses.fields(type(parsed))} - harness_side
            assert set(raw) - {"event"} == known, raw


def test_state_digests_and_the_environment_are_reported(baseline: dict[str, Result]) -> None:
    train = baseline["train"]
    standard = {"parameters", "optimizer", "scheduler", "rng_torch", "rng_numpy", "rng_python", "data_position"}
    saved = {e["step"]: e["components"] for e in train.of("checkpoint_saved")}
    assert saved and all(set(components) == standard for components in saved.values())
    assert len({components["parameters"] for components in saved.values()}) == len(saved)  # training moves them
    assert list(trail(train)) == [50]  # DIGEST_EVERY defaults to 50; TRAIN_STEPS is 60
    assert trail(train)[50] == saved[50]  # the same state, digested live and from the checkpoint's snapshot
    for result in baseline.values():
        [environment] = result.of("environment")
        assert len(environment["fingerprint"]) == 64 and "python" in environment["details"]
    assert baseline["train"].of("environment")[0]["details"]["torch_deterministic_algorithms"] in ("True", "False")


def test_every_step_skips_when_its_output_exists(baseline: dict[str, Result], prepared: Pipeline) -> None:
    for step in STEPS:
        result = prepared.run(step, "base")
        assert result.code == 0, (step, result.stderr)
        kinds = [e["event"] for e in result.events]
        assert kinds[0] == "run_started" and kinds[-1] == "step_finished", (step, kinds)
        assert "step_skipped" in kinds, step
        assert "artifact_written" not in kinds, step  # nothing published twice
    assert prepared.run("evaluate", "base").of("evaluated")[0]["passed"]


def test_evaluate_gate_fails_with_exit_3(baseline: dict[str, Result], prepared: Pipeline) -> None:
    result = prepared.run("evaluate", "base", AUC_GATE="0.99")
    assert result.code == 3
    assert result.of("evaluated")[0]["passed"] is False
    assert "AUC_GATE" in result.stderr


# --- atomic publish -------------------------------------------------------------


def test_conditional_put_keeps_the_first_object(fresh: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in fresh.env("r").items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    store = Store(fresh.endpoint, fresh.bucket, on_retries=lambda n: None)
    store.ensure_bucket()
    store.ensure_bucket()  # the bucket already exists: fine
    assert store.put_if_absent("k", b"first") is True
    assert store.put_if_absent("k", b"second") is False
    first = store.get("k")
    assert first is not None and first.body == b"first"
    assert store.put_if_match("k", b"third", etag='"not-the-etag"') is False
    assert store.put_if_match("k", b"third", etag=first.etag) is True
    assert store.get("k").body == b"third"  # type: ignore[union-attr]


def test_features_are_shared_by_date_never_duplicated(prepared: Pipeline) -> None:
    before = {k: prepared.s3.get_object(Bucket=prepared.bucket, Key=k)["ETag"]
              for k in prepared.keys(f"features/reference/date={DATE}/")}
    assert len(before) == data.SHARDS
    prepared.s3.delete_object(Bucket=prepared.bucket, Key=f"features/reference/date={DATE}/entity_shard=03.npz")
    backfill = prepared.run("features", "backfill-1", RUN_KIND="backfill")
    assert backfill.code == 0, backfill.stderr
    written = [e["logical_id"] for e in backfill.of("artifact_written")]
    assert written == [f"features/{DATE}/03"]  # only the missing shard; the others got 412
    after = {k: prepared.s3.get_object(Bucket=prepared.bucket, Key=k)["ETag"]
             for k in prepared.keys(f"features/reference/date={DATE}/")}
    assert after == before  # deterministic: the rewritten shard has the same bytes


def test_serialization_is_byte_identical() -> None:
    part = data.raw_part(7, DATE, 5)
    first = data.to_npz(part)
    time.sleep(1.1)  # np.savez would stamp a new time here
    assert data.to_npz(data.raw_part(7, DATE, 5)) == first
    assert np.array_equal(data.from_npz(first)["x"], part["x"])


def test_auc_matches_pairwise_definition() -> None:
    rng = np.random.default_rng(0)
    scores = np.round(rng.normal(size=200), 1)  # rounding creates ties
    labels = (rng.random(200) < 0.4).astype(np.int8)
    pos, neg = scores[labels == 1], scores[labels == 0]
    pairwise = ((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])).mean()
    assert auc(scores, labels) == pytest.approx(pairwise)


# --- gates and user errors ------------------------------------------------------


def test_validate_refuses_an_incomplete_day(fresh: Pipeline) -> None:
    assert fresh.run("ingest", "r").code == 0
    fresh.s3.delete_object(Bucket=fresh.bucket, Key=f"raw/reference/date={DATE}/hour=05/part-0.npz")
    result = fresh.run("validate", "r", VALIDATE_WAIT_SECONDS="0")  # the sensor gives up at once
    assert result.code == 3
    assert len(result.stderr.strip().splitlines()) == 1 and "05" in result.stderr
    assert fresh.keys("runs/") == []
    assert "step_finished" not in [e["event"] for e in result.events]


def test_missing_env_var_is_a_one_line_user_error(fresh: Pipeline) -> None:
    result = fresh.run("ingest", "r", RUN_ID=None)  # type: ignore[arg-type]
    assert result.code == 2
    assert result.stderr.count("\n") == 1 and "RUN_ID" in result.stderr
    assert fresh.run("ingest", "r", TRAIN_STEPS="-3").code == 2


def test_unreachable_s3_is_a_one_line_user_error(fresh: Pipeline) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = fresh.run("ingest", "r", S3_ENDPOINT_URL=url)
    assert result.code == 2
    assert result.stderr.count("\n") == 1 and url in result.stderr


def test_unknown_broken_variant_is_rejected(fresh: Pipeline) -> None:
    result = fresh.run("ingest", "r", PIPELINE_BROKEN="no-such-bug")
    assert result.code == 2 and "no-such-bug" in result.stderr


# --- interrupted training ends bit-identical ------------------------------------


def test_sigterm_loses_no_step_and_resumes_bit_identical(baseline: dict[str, Result], prepared: Pipeline) -> None:
    proc = prepared.start("train", "term")
    lines = run_until(proc, 25)
    proc.send_signal(signal.SIGTERM)
    first = finish(proc, lines)
    assert first.code == 143, first.stderr
    last_step = first.of("train_step")[-1]["step"]
    assert first.of("sigterm_received")[0]["step"] == last_step
    assert first.of("checkpoint_saved")[-1]["step"] == last_step  # zero steps lost
    assert "step_finished" not in [e["event"] for e in first.events]

    second = prepared.run("train", "term")
    assert second.of("checkpoint_restored")[0]["step"] == last_step
    assert second.of("training_started")[0]["start_step"] == last_step
    assert second.of("train_step")[0]["step"] == last_step + 1
    # What was restored is what was saved, and the resumed run passes the uninterrupted one's trail.
    assert second.of("checkpoint_restored")[0]["components"] == first.of("checkpoint_saved")[-1]["components"]
    assert trail(second) == {step: c for step, c in trail(baseline["train"]).items() if step > last_step}
    assert final_sha(second) == final_sha(baseline["train"])


def test_sigkill_resumes_from_latest_complete_checkpoint_bit_identical(
    baseline: dict[str, Result], prepared: Pipeline
) -> None:
    # A state.pt without a manifest (a save killed half-way) must never be used.
    prepared.s3.put_object(Bucket=prepared.bucket,
                           Key="runs/reference/2024-03-01/kill/checkpoints/step-000050/state.pt",
                           Body=b"torn write")
    proc = prepared.start("train", "kill")
    lines = run_until(proc, 36)
    proc.kill()
    first = finish(proc, lines)
    assert first.code == -signal.SIGKILL
    saved = [e["step"] for e in first.of("checkpoint_saved")]
    assert saved and saved[-1] >= 30

    second = prepared.run("train", "kill")
    restored = second.of("checkpoint_restored")[0]
    assert restored["step"] >= saved[-1]  # the latest complete one (a save may have landed after the last line)
    assert restored["step"] < 50
    assert final_sha(second) == final_sha(baseline["train"])


def test_ignore_checkpoint_variant_restarts_from_zero(prepared: Pipeline) -> None:
    proc = prepared.start("train", "broken", TRAIN_STEPS="30")
    lines = run_until(proc, 15)
    proc.send_signal(signal.SIGTERM)
    assert finish(proc, lines).code == 143
    again = prepared.run("train", "broken", TRAIN_STEPS="30", PIPELINE_BROKEN="ignore-checkpoint")
    assert again.code == 0, again.stderr
    assert again.of("checkpoint_restored") == []
    assert again.of("training_started")[0]["start_step"] == 0


# --- registry -------------------------------------------------------------------


def test_register_retried_gives_one_version(baseline: dict[str, Result], prepared: Pipeline) -> None:
    first = baseline["register"].of("model_registered")[0]
    retry = prepared.run("register", "base")
    registered = retry.of("model_registered")[0]
    assert registered == {**registered, "version": first["version"], "created": False}
    versions = prepared.keys("registry/reference/versions/")
    runs = [json.loads(prepared.s3.get_object(Bucket=prepared.bucket, Key=k)["Body"].read())["run_id"]
            for k in versions]
    assert runs.count("base") == 1


def test_register_reuses_a_version_left_by_a_dead_attempt(baseline: dict[str, Result], prepared: Pipeline) -> None:
    # Copy base's evaluation so run "orphan" may register, then fake an attempt that
    # died after allocating its version but before writing the run object.
    s3, bucket = prepared.s3, prepared.bucket
    evaluation = s3.get_object(Bucket=bucket, Key="runs/reference/2024-03-01/base/evaluation.json")["Body"].read()
    s3.put_object(Bucket=bucket, Key="runs/reference/2024-03-01/orphan/evaluation.json", Body=evaluation)
    number = len(prepared.keys("registry/reference/versions/")) + 1
    s3.put_object(Bucket=bucket, Key=f"registry/reference/versions/{number:06d}.json",
                  Body=json.dumps({"version": number, "run_id": "orphan"}).encode())
    result = prepared.run("register", "orphan", RUN_STARTED_AT=str(time.time() - 5))
    assert result.code == 0, result.stderr
    assert result.of("model_registered")[0] == {**result.of("model_registered")[0], "version": number, "created": True}
    assert len(prepared.keys("registry/reference/versions/")) == number
    latest = json.loads(s3.get_object(Bucket=bucket, Key="registry/reference/aliases/latest.json")["Body"].read())
    assert latest["version"] == number


# --- metrics --------------------------------------------------------------------


def test_metrics_are_served_and_linger(prepared: Pipeline) -> None:
    port = free_port()
    proc = prepared.start("train", "metrics", TRAIN_STEPS="20", METRICS_PORT=str(port), METRICS_LINGER_SECONDS="3")
    assert proc.stdout is not None
    for line in proc.stdout:
        if json.loads(line)["event"] == "step_finished":
            break
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    proc.kill()
    proc.communicate()
    labels = 'kind="daily",pipeline="reference",run_id="metrics"'
    assert f"pipeline_train_step{{{labels}}} 20.0" in body
    assert f"pipeline_train_steps_total{{{labels}}} 20.0" in body
    assert f"pipeline_checkpoint_save_seconds_count{{{labels}}} 2.0" in body
    assert 'pipeline_step_duration_seconds{' in body and 'step="train"' in body


def test_state_difference_names_the_first_differing_value_and_accepts_an_equal_state() -> None:
    import io

    import torch

    from reference_pipeline.checkpoint import state_difference

    def saved(state: dict[str, object]) -> bytes:
        buffer = io.BytesIO()
        torch.save(state, buffer)
        return buffer.getvalue()

    state = {"step": 250, "model": {"w": torch.arange(4.0)}, "rng": {"python": (3, (1, 2), None)}}
    # The same values with a different storage layout: other bytes, the same state.
    shared = torch.arange(8.0)
    relaid = {"step": 250, "model": {"w": shared[:4]}, "rng": {"python": (3, (1, 2), None)}}
    assert saved(state) != saved(relaid)
    assert state_difference(saved(state), saved(relaid)) == ""
    changed = {"step": 250, "model": {"w": torch.tensor([0.0, 1.0, 2.0, 3.5])}, "rng": {"python": (3, (1, 2), None)}}
    assert state_difference(saved(state), saved(changed)) == "state.model.w"
    assert state_difference(saved(state)[:100], saved(state)).startswith("the stored object does not load")
