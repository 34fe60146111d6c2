"""A corrupted checkpoint between two training attempts: the correct pipeline rejects it, ``restore-unverified``
loads it (or crashes on it), and ``checkpoint-integrity`` tells the two apart.

Real train processes against moto in a versioned bucket: the first attempt is SIGKILLed after a few
checkpoints, the ``checkpoint-corruption`` fault (kill off: the test killed the attempt) damages the newest
complete checkpoint's state, the second attempt restores. The history is what the attempts printed, with the
fault's own events between them; a failed Job, which the cluster would record, is added by hand.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator

import pytest
from conftest import DATE, Pipeline, Result, parse

from harness.checks.checkpoint_integrity import check_checkpoint_integrity
from harness.checks.verdict import CheckResult
from harness.evidence.reference import ReferenceRun
from harness.faults.checkpoint_corruption import CHECKPOINT_CORRUPTION, CheckpointCorruptionParams
from harness.faults.recorder import FaultRecorder
from harness.faults.role import FaultContext
from harness.history.events import Event, JobFinished, from_json
from harness.services.inventory import prepare_bucket
from tests.cluster.conftest import Collector
from tests.moto_s3 import use_test_credentials

RUN = "corrupt"
JOB = "train-job"


@pytest.fixture(scope="module", autouse=True)
def aws() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        use_test_credentials(patch)
        yield


def _scenario(endpoint: str, prepared: Pipeline, name: str) -> Pipeline:
    """A fresh versioned bucket holding the prepared day's raw data and features."""
    pipeline = Pipeline(endpoint, name)
    prepare_bucket(endpoint_url=endpoint, bucket=name)
    for prefix in (f"raw/reference/date={DATE}/", f"features/reference/date={DATE}/"):
        for key in prepared.keys(prefix):
            pipeline.s3.copy_object(Bucket=name, Key=key, CopySource={"Bucket": prepared.bucket, "Key": key})
    return pipeline


def _killed_after_checkpoints(pipeline: Pipeline) -> Result:
    """A first attempt SIGKILLed at step 36 (checkpoints of steps 10, 20 and maybe 30 complete)."""
    proc = pipeline.start("train", RUN)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        event = json.loads(line)
        if event["event"] == "train_step" and event["step"] >= 36:
            break
    proc.kill()
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, stderr
    return Result(proc.returncode, parse("".join(lines) + stdout), stderr)


def _history(attempts: list[Result], fault_events: list[Event], crashed: bool) -> list[Event]:
    def events(attempt: int) -> list[Event]:
        parsed = [from_json(json.dumps(raw), pod=f"pod-{attempt}", job=JOB, attempt=attempt)
                  for raw in attempts[attempt].events]
        return [e for e in parsed if e is not None]

    history = events(0) + fault_events
    for attempt in range(1, len(attempts)):
        history += events(attempt)
    if crashed:  # what the cluster records once every retry failed
        history.append(JobFinished(ts=history[-1].ts + 1, job=JOB, succeeded=False, failures=len(attempts)))
    return history


def _corrupt_and_restore(endpoint: str, prepared: Pipeline, *, mode: str, broken: str) -> tuple[list[Result],
                                                                                                CheckResult, str]:
    pipeline = _scenario(endpoint, prepared, f"corrupt-{mode}{'-broken' if broken else ''}")
    first = _killed_after_checkpoints(pipeline)
    collector = Collector()
    faults = FaultRecorder(sink=collector, experiment="corruption", context=FaultContext(
        cluster=None, seed=11, run_labels={"run": RUN}, s3_url=endpoint, bucket=pipeline.bucket))  # type: ignore[arg-type]
    damaged = faults.inject(CHECKPOINT_CORRUPTION, CheckpointCorruptionParams(mode=mode, kill=False)).target.name
    attempts = [first, pipeline.run("train", RUN, PIPELINE_BROKEN=broken)]
    crashed = attempts[-1].code != 0
    if crashed:  # the Job retries; the damage is still there
        attempts.append(pipeline.run("train", RUN, PIPELINE_BROKEN=broken))
    faults.heal()
    return attempts, check_checkpoint_integrity(_history(attempts, list(collector.events), crashed), run_id=RUN,
                                                reference=REFERENCE[0]), damaged


REFERENCE: list[ReferenceRun | None] = [None]


@pytest.fixture(scope="module", autouse=True)
def reference(baseline: dict[str, Result]) -> None:
    done = baseline["train"].of("training_completed")
    REFERENCE[0] = ReferenceRun(params_sha256=str(done[0]["params_sha256"]))


@pytest.mark.parametrize("mode", ["flip", "truncate"])
def test_the_correct_pipeline_rejects_the_damage_and_ends_bit_identical(mode: str, endpoint: str,
                                                                       prepared: Pipeline) -> None:
    attempts, result, damaged = _corrupt_and_restore(endpoint, prepared, mode=mode, broken="")
    second = attempts[1]
    assert second.code == 0, second.stderr
    rejected = second.of("checkpoint_rejected")
    assert [e["manifest_key"] for e in rejected] == [damaged]
    damaged_step = rejected[0]["step"]
    assert second.of("checkpoint_restored")[0]["step"] == damaged_step - 10
    assert result.verdict == "pass", result.evidence
    assert "rejected it" in result.evidence[0] and f"step {damaged_step - 10}" in result.evidence[0]
    assert "bit-identical" in result.evidence[-1]


@pytest.mark.parametrize("mode", ["flip", "truncate"])
def test_restore_unverified_is_caught(mode: str, endpoint: str, prepared: Pipeline) -> None:
    attempts, result, damaged = _corrupt_and_restore(endpoint, prepared, mode=mode, broken="restore-unverified")
    assert not attempts[1].of("checkpoint_rejected")
    assert result.verdict == "fail", result.evidence
    if attempts[1].code == 0:  # torch loaded the damaged bytes: wrong values, silently
        assert attempts[1].of("checkpoint_restored")[0]["manifest_key"] == damaged
        assert "restored it anyway" in result.evidence[0]
    else:  # torch.load raised: every retry crashes, the run fails
        assert "job train-job failed" in result.evidence[0], result.evidence
