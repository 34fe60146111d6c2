"""The workload contract suite (DESIGN section 5): every declared pipeline the harness ships or
documents must pass it, run as local processes with the harness's environment against moto S3.

It checks the contract itself, not one pipeline's internals: events the history understands,
checkpoints with component digests, a digest trail, an environment fingerprint, keys the declared
layout covers, idempotent re-runs, a checkpoint after SIGTERM, a resume that restores exactly
what was saved and ends bit-identical to an uninterrupted run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from harness.history.events import (
    CheckpointRestored,
    CheckpointSaved,
    DigestTrail,
    EnvironmentReported,
    SigtermReceived,
    TrainingCompleted,
    TrainStep,
    UnknownEvent,
    of_type,
)
from harness.workload.declaration import DeclaredWorkload, load_workload
from harness.workload.reference import reference_declaration
from tests.moto_s3 import moto_s3

from .local_run import CREDENTIALS, ROOT, SIGKILL, SIGTERM, LocalRun, StepResult

DECLARATIONS = {
    "reference": reference_declaration(),
    "example-churn": ROOT / "examples" / "churn" / "pipeline.yaml",
}
PARAMS = {"train_steps": 120, "checkpoint_every": 20}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_s3() as url:
        yield url


@pytest.fixture(scope="module", params=sorted(DECLARATIONS))
def workload(request: pytest.FixtureRequest) -> DeclaredWorkload:
    return load_workload(DECLARATIONS[request.param])


@pytest.fixture(scope="module")
def bucket(workload: DeclaredWorkload, endpoint: str) -> str:
    name = f"contract-{workload.name}"
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                      region_name=CREDENTIALS["AWS_DEFAULT_REGION"])
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


@pytest.fixture(scope="module")
def uninterrupted(workload: DeclaredWorkload, endpoint: str, bucket: str,
                  tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalRun, list[StepResult]]:
    missing = sorted(set(PARAMS) - set(workload.settings))
    assert not missing, f"a testable pipeline declares the settings {', '.join(missing)}"
    run = LocalRun(workload=workload, endpoint=endpoint, bucket=bucket, run_id="contract-base",
                   tmp=tmp_path_factory.mktemp("pods"), params=PARAMS)
    results = [run.run(step.name) for step in workload.steps]
    for result in results:
        assert result.code == 0, f"{workload.name} {result.step} exited {result.code}: {result.stderr[-2000:]}"
    return run, results


def final_params(results: list[StepResult]) -> str:
    done = [e for r in results for e in of_type(r.events, TrainingCompleted)]
    assert done, "training never reported training_completed"
    return done[-1].params_sha256


def test_an_uninterrupted_run_reports_what_the_checks_read(uninterrupted: tuple[LocalRun, list[StepResult]]) -> None:
    run, results = uninterrupted
    for result in results:
        unknown = [e.name for e in result.events if isinstance(e, UnknownEvent) and not e.name.startswith("lease_")]
        assert not unknown, f"step {result.step} printed events the history does not know: {unknown}"
        assert of_type(result.events, EnvironmentReported), f"step {result.step} reported no environment"
    train = next(r for r in results if r.step == run.workload.train_step)
    steps = [e.step for e in of_type(train.events, TrainStep)]
    assert steps == list(range(1, PARAMS["train_steps"] + 1))
    saved = of_type(train.events, CheckpointSaved)
    assert saved and all({"parameters", "optimizer"} <= set(e.components) for e in saved), \
        "every checkpoint_saved names at least the parameters' and the optimizer's digests"
    trail = of_type(train.events, DigestTrail)
    assert trail and all("parameters" in e.components for e in trail)
    assert len(final_params(results)) == 64


def test_every_key_the_run_wrote_is_covered_by_the_declared_layout(
        uninterrupted: tuple[LocalRun, list[StepResult]]) -> None:
    run, _ = uninterrupted
    keys = sorted({key for key, _ in run.versions()})
    assert keys
    uncovered = [key for key in keys if run.workload.layout.match(key) is None]
    assert not uncovered, f"keys no artifact rule covers (the duplicate check could not judge them): {uncovered}"
    parts = {m.rule.part for m in (run.workload.layout.match(k) for k in keys) if m is not None}
    assert {"state", "manifest"} <= parts, "checkpoints are declared as state and manifest parts"


def test_re_running_every_step_writes_nothing_new(uninterrupted: tuple[LocalRun, list[StepResult]]) -> None:
    run, _ = uninterrupted
    before = run.versions()
    again = [run.run(step.name, pod=f"again-{step.name}") for step in run.workload.steps]
    assert [r.code for r in again] == [0] * len(again), [r.stderr[-500:] for r in again if r.code]
    assert run.versions() == before, "a re-run step overwrote or added objects (not an idempotent skip)"


@pytest.mark.parametrize("sig", [SIGTERM, SIGKILL], ids=["sigterm", "sigkill"])
def test_an_interrupted_attempt_resumes_exactly_and_ends_bit_identical(
        uninterrupted: tuple[LocalRun, list[StepResult]], tmp_path: Path, sig: int) -> None:
    base, results = uninterrupted
    run = LocalRun(workload=base.workload, endpoint=base.endpoint, bucket=base.bucket,
                   run_id=f"contract-{'term' if sig == SIGTERM else 'kill'}", tmp=tmp_path, params=PARAMS)
    run.run_until(run.workload.train_step)
    first = run.terminate_during_training(at_step=50, sig=sig, pod="first")
    saved = of_type(first.events, CheckpointSaved)
    if sig == SIGTERM:
        assert first.code == 143, f"after SIGTERM the step exits 143, got {first.code}: {first.stderr[-1000:]}"
        term = of_type(first.events, SigtermReceived)
        assert term and saved and saved[-1].ts >= term[-1].ts and saved[-1].step == term[-1].step, \
            "a checkpoint of the step it stopped at is saved after SIGTERM"
    else:
        assert first.code == -SIGKILL
    second = run.run(run.workload.train_step, pod="second")
    assert second.code == 0, second.stderr[-2000:]
    restored = of_type(second.events, CheckpointRestored)
    assert restored and saved
    latest = max(saved, key=lambda e: e.step)
    assert restored[0].step == latest.step, "the new attempt restores the latest complete checkpoint"
    assert dict(restored[0].components) == dict(latest.components), "what was restored is what was saved"
    assert final_params([second]) == final_params(results)
