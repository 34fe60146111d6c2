"""Late and missing raw parts, and mixed lineage, against real step processes and moto.

The correct pipeline's validate is a sensor: it waits for a late hour and passes, and fails the run
after ``VALIDATE_WAIT_SECONDS`` when an hour stays missing, so nothing trains on the partial day.
``accept-partial-day`` trains on 23 hours and ``no-training-on-partial-data`` fails it;
``mixed-lineage`` evaluates the registry's latest model and ``lineage`` fails it. A part is hidden
the way the late-data fault hides it: a delete marker, removed to let the part land.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from conftest import DATE, Pipeline, Result, parse

from harness.checks.lineage import check_lineage
from harness.checks.partial_data import check_partial_data
from harness.checks.verdict import CheckResult
from harness.evidence.inventory import Inventory
from harness.history.events import Event, from_json
from harness.services.inventory import prepare_bucket, take_inventory
from harness.workload.reference import reference_workload
from tests.moto_s3 import use_test_credentials

LAYOUT = reference_workload().facts().layout
HOUR = 5
HIDDEN = f"raw/reference/date={DATE}/hour={HOUR:02d}/part-0.npz"


@pytest.fixture(scope="module")
def aws() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        use_test_credentials(patch)
        yield


@pytest.fixture(scope="module")
def day(endpoint: str, aws: None) -> Pipeline:
    """The day's 24 raw parts, ingested once."""
    pipeline = Pipeline(endpoint, "late-day")
    assert pipeline.run("ingest", "ingest").code == 0
    return pipeline


def scenario(endpoint: str, name: str, source: Pipeline, prefix: str = "raw/") -> Pipeline:
    """A fresh versioned bucket holding one version of each of ``source``'s keys under ``prefix``."""
    pipeline = Pipeline(endpoint, name)
    prepare_bucket(endpoint_url=endpoint, bucket=name)
    for key in source.keys(prefix):
        pipeline.s3.copy_object(Bucket=name, Key=key, CopySource={"Bucket": source.bucket, "Key": key})
    return pipeline


def hide(pipeline: Pipeline, key: str) -> str:
    """Hide ``key`` behind a delete marker; returns the marker's version id."""
    return str(pipeline.s3.delete_object(Bucket=pipeline.bucket, Key=key)["VersionId"])


def history(*results: Result) -> list[Event]:
    events = []
    for attempt, result in enumerate(results):
        for raw in result.events:
            event = from_json(json.dumps(raw), pod=f"pod-{attempt}", attempt=attempt)
            assert event is not None
            events.append(event)
    return events


def inventory(endpoint: str, pipeline: Pipeline) -> Inventory:
    return take_inventory(endpoint_url=endpoint, bucket=pipeline.bucket, read_bodies=LAYOUT.body_pattern())


def partial(endpoint: str, pipeline: Pipeline, *results: Result) -> CheckResult:
    return check_partial_data(history(*results), inventory(endpoint, pipeline), layout=LAYOUT)


def lineage(endpoint: str, pipeline: Pipeline, *results: Result) -> CheckResult:
    return check_lineage(history(*results), inventory(endpoint, pipeline), layout=LAYOUT)


def run_steps(pipeline: Pipeline, run_id: str, steps: tuple[str, ...], **env: str) -> list[Result]:
    results = []
    for step in steps:
        result = pipeline.run(step, run_id, **env)
        assert result.code == 0, (step, result.stderr)
        results.append(result)
    return results


@pytest.mark.parametrize("broken", ["", "accept-partial-day"])
def test_a_missing_hour_never_reaches_training(broken: str, endpoint: str, day: Pipeline) -> None:
    pipeline = scenario(endpoint, f"missing{'-broken' if broken else ''}", day)
    hide(pipeline, HIDDEN)
    started = time.monotonic()
    validate = pipeline.run("validate", "r1", VALIDATE_WAIT_SECONDS="2", PIPELINE_BROKEN=broken)
    if not broken:
        assert validate.code == 3, validate.stderr  # GateFailed: the run stops here
        assert time.monotonic() - started >= 2.0
        assert f"still lacks raw hour(s) {HOUR:02d}" in validate.stderr and "after waiting 2 s" in validate.stderr
        (waiting,) = validate.of("inputs_waiting")
        assert waiting["missing"] == [HIDDEN] and waiting["date"] == DATE
        assert pipeline.keys("features/") == [] and pipeline.keys("runs/reference/") == []
        result = partial(endpoint, pipeline, validate)
        assert result.verdict == "unknown" and "no run trained" in result.evidence[0]
        return
    assert validate.code == 0 and validate.of("inputs_waiting") == []  # accepted at once
    rest = run_steps(pipeline, "r1", ("features", "train"), PIPELINE_BROKEN=broken)
    (raw,) = [e for e in rest[0].of("inputs_read") if e["role"] == "raw"]
    assert len(raw["keys"]) == 23 and HIDDEN not in raw["keys"]
    result = partial(endpoint, pipeline, validate, *rest)
    assert result.verdict == "fail", result.evidence
    assert result.evidence[0].startswith("run r1 trained on features built (by r1) from 23 raw part(s)")
    assert f"hour(s) {HOUR:02d} ({HIDDEN})" in result.evidence[0]


def test_a_late_hour_is_waited_for_and_the_run_succeeds(endpoint: str, day: Pipeline) -> None:
    pipeline = scenario(endpoint, "late-hour", day)
    marker = hide(pipeline, HIDDEN)
    proc = pipeline.start("validate", "r1", VALIDATE_WAIT_SECONDS="60")
    time.sleep(3.0)
    assert proc.poll() is None, "validate did not wait for the late hour"
    pipeline.s3.delete_object(Bucket=pipeline.bucket, Key=HIDDEN, VersionId=marker)  # the hour lands
    stdout, stderr = proc.communicate(timeout=60)
    validate = Result(proc.returncode, parse(stdout), stderr)
    assert validate.code == 0, stderr
    assert [e["missing"] for e in validate.of("inputs_waiting")] == [[HIDDEN]]
    rest = run_steps(pipeline, "r1", ("features", "train", "evaluate", "register"))
    result = partial(endpoint, pipeline, validate, *rest)
    assert result.verdict == "pass", result.evidence
    judged = lineage(endpoint, pipeline, validate, *rest)
    assert judged.verdict == "pass", judged.evidence


@pytest.fixture(scope="module")
def registered(endpoint: str, day: Pipeline) -> tuple[Pipeline, list[Result]]:
    """Run r1 of the day, complete and registered as version 1 (the registry's latest)."""
    pipeline = scenario(endpoint, "lineage-source", day)
    return pipeline, run_steps(pipeline, "r1", ("validate", "features", "train", "evaluate", "register"))


@pytest.mark.parametrize("broken", ["", "mixed-lineage"])
def test_evaluating_another_runs_model_is_caught(broken: str, endpoint: str,
                                                 registered: tuple[Pipeline, list[Result]]) -> None:
    source, first = registered
    pipeline = scenario(endpoint, f"lineage{'-broken' if broken else ''}", source, prefix="")
    second = run_steps(pipeline, "r2", ("train", "evaluate", "register"), PIPELINE_BROKEN=broken)
    result = lineage(endpoint, pipeline, *first, *second)
    if not broken:
        assert result.verdict == "pass", result.evidence
        return
    assert result.verdict == "fail", result.evidence
    own = f"runs/reference/{DATE}/r1/model/model.pt"
    assert result.evidence[0] == f"run r2 (date {DATE}): evaluate read model {own} of run r1"
