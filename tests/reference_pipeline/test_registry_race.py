"""Runs racing at register, against moto: the correct registry stays linearizable, the broken variants are caught.

The real ``register`` step (and ``evaluate``) runs in threads released together by a barrier (the tightest
race one process can make) or in separate processes; the events they print become the history
(``from_json``), the versioned bucket the inventory, and ``registry-linearizable`` / ``quality-gate`` judge.
"""

from __future__ import annotations

import contextlib
import io
import json
import threading
from collections.abc import Iterator

import pytest
from conftest import Pipeline

from harness.checks.quality_gate import check_quality_gate
from harness.checks.registry_linearizable import check_registry
from harness.checks.verdict import CheckResult
from harness.history.events import AliasMoved, Event, ModelRegistered, from_json, of_type
from harness.services.inventory import prepare_bucket, take_inventory
from harness.workload.reference import reference_workload
from mlchaos_probe.metrics import PipelineMetrics
from reference_pipeline.config import Config
from reference_pipeline.registry import Registry
from reference_pipeline.s3 import Store
from reference_pipeline.steps import Context, load
from tests.moto_s3 import use_test_credentials

RACERS = 8
ROUNDS = 6  # the broken variant must lose an update in at least one round of eight racers


@pytest.fixture(scope="module", autouse=True)
def aws() -> Iterator[None]:
    """Credentials for the harness's own S3 clients (the step processes get theirs from Pipeline.env)."""
    with pytest.MonkeyPatch.context() as patch:
        use_test_credentials(patch)
        yield


class _ThreadStdout(io.TextIOBase):
    """sys.stdout for the racing threads: every line printed is kept (the probe writes under a lock)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> int:
        self.lines.extend(line for line in text.splitlines() if line.strip())
        return len(text)


@contextlib.contextmanager
def captured() -> Iterator[_ThreadStdout]:
    out = _ThreadStdout()
    with contextlib.redirect_stdout(out):  # process-wide: the threads' probe lines land here too
        yield out


def seed_evaluations(pipeline: Pipeline, run_ids: list[str], value: float = 0.9) -> None:
    """Each run's evaluate output, as if evaluate had passed (register reads only this)."""
    for run_id in run_ids:
        config = Config.from_env(pipeline.env(run_id))
        pipeline.s3.put_object(Bucket=pipeline.bucket, Key=f"{config.run_prefix}/evaluation.json",
                               Body=f'{{"metric": "auc", "value": {value}, "model_key": "{config.model_key}"}}')


def preclaim(pipeline: Pipeline, run_ids: list[str]) -> None:
    """Each run's version and run record, claimed by the registry's own code as a first register attempt
    that died before it moved the alias would leave them: the retries then race at the alias alone."""
    for run_id in run_ids:
        config = Config.from_env(pipeline.env(run_id))
        registry = Registry(config, Store(config.s3_endpoint_url, config.s3_bucket, on_retries=lambda _: None))
        registry._claim(f"{config.registry_prefix}/runs/{run_id}.json")


def race_threads(pipeline: Pipeline, run_ids: list[str], broken: str = "") -> list[Event]:
    """Run the real register step for every run id at once (threads, one barrier); the history."""
    barrier = threading.Barrier(len(run_ids))
    errors: list[BaseException] = []
    step = load("register")

    def one(run_id: str) -> None:
        try:
            config = Config.from_env(pipeline.env(run_id, PIPELINE_BROKEN=broken))
            store = Store(config.s3_endpoint_url, config.s3_bucket, on_retries=lambda _: None)
            metrics = PipelineMetrics(pipeline=config.pipeline, run_id=run_id, kind=config.kind, port=None)
            barrier.wait(30)
            step(Context(config=config, store=store, metrics=metrics, step_name="register"))
        except BaseException as error:  # reported by the test thread below
            errors.append(error)

    with captured() as out:
        threads = [threading.Thread(target=one, args=(r,)) for r in run_ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert not errors, errors
    return [e for e in (from_json(line) for line in out.lines) if e is not None]


def judge(pipeline: Pipeline, events: list[Event]) -> CheckResult:
    inventory = take_inventory(endpoint_url=pipeline.endpoint, bucket=pipeline.bucket,
                               read_bodies=reference_workload().facts().layout.body_pattern())
    return check_registry(events, inventory)


def bucket(fresh: Pipeline, name: str) -> Pipeline:
    pipeline = Pipeline(fresh.endpoint, f"{fresh.bucket[:50]}-{name}")
    prepare_bucket(endpoint_url=pipeline.endpoint, bucket=pipeline.bucket)
    return pipeline


@pytest.mark.parametrize("claimed", [False, True], ids=["fresh-claims", "retries-at-the-alias"])
def test_correct_registry_stays_linearizable_under_racing_threads(fresh: Pipeline, claimed: bool) -> None:
    refused = 0
    for round_ in range(3):
        pipeline = bucket(fresh, f"ok{int(claimed)}{round_}")
        run_ids = [f"run-{n}" for n in range(RACERS)]
        seed_evaluations(pipeline, run_ids)
        if claimed:
            preclaim(pipeline, run_ids[::-1])
        events = race_threads(pipeline, run_ids)
        refused += sum(not m.ok for m in of_type(events, AliasMoved))
        assert len(of_type(events, ModelRegistered)) == RACERS
        result = judge(pipeline, events)
        assert result.verdict == "pass", result.evidence
        versions = sorted(e.version for e in of_type(events, ModelRegistered))
        assert versions == list(range(1, RACERS + 1))  # one version per run id, none skipped or shared
    if claimed:
        assert refused > 0  # the moves really overlapped: the lock refused some, which retried


def test_alias_without_ifmatch_is_caught_by_racing_threads(fresh: Pipeline) -> None:
    verdicts = []
    for round_ in range(ROUNDS):
        pipeline = bucket(fresh, f"bad{round_}")
        run_ids = [f"run-{n}" for n in range(RACERS)]
        seed_evaluations(pipeline, run_ids)
        preclaim(pipeline, run_ids[::-1])
        result = judge(pipeline, race_threads(pipeline, run_ids, broken="alias-without-ifmatch"))
        verdicts.append(result.verdict)
        assert result.verdict in ("pass", "fail"), result.evidence  # every write is attributed
        if result.verdict == "fail":
            assert any("lost update" in line or "moved backwards" in line for line in result.evidence)
            return
    pytest.fail(f"no lost update in {ROUNDS} rounds of {RACERS} racers: {verdicts}")


def test_correct_registry_stays_linearizable_under_racing_processes(fresh: Pipeline) -> None:
    """Separate step processes (as pods are), shared run ids included: two attempts of run-0 race too."""
    pipeline = bucket(fresh, "proc")
    run_ids = ["run-0", "run-0", "run-1", "run-2", "run-3"]
    seed_evaluations(pipeline, sorted(set(run_ids)))
    procs = [pipeline.start("register", r) for r in run_ids]
    events: list[Event] = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        events += [e for e in (from_json(line) for line in stdout.splitlines()) if e is not None]
    result = judge(pipeline, events)
    assert result.verdict == "pass", result.evidence
    registered = {e.run_id: e.version for e in of_type(events, ModelRegistered)}
    assert len(set(registered.values())) == 4 and len(of_type(events, AliasMoved)) >= 1


# --- quality gate: real evaluate and register processes --------------------------------------------


def gated_run(prepared: Pipeline, baseline: object, fresh: Pipeline, broken: str) -> list[Event]:
    """A run whose model (the baseline's) scores below AUC_GATE, evaluated and registered for real."""
    pipeline = bucket(fresh, "gate")
    source = Config.from_env(prepared.env("base"))
    target = Config.from_env(pipeline.env("gated"))
    keys = [*prepared.keys("features/"), source.model_key]
    for key in keys:
        dest = target.model_key if key == source.model_key else key
        pipeline.s3.copy_object(Bucket=pipeline.bucket, Key=dest, CopySource={"Bucket": prepared.bucket, "Key": key})
    events: list[Event] = []
    for step in ("evaluate", "register"):
        result = pipeline.run(step, "gated", AUC_GATE="0.999", PIPELINE_BROKEN=broken)
        events += [e for e in (from_json(json.dumps(line)) for line in result.events) if e is not None]
        if result.code != 0:
            break
    return events


def test_correct_pipeline_keeps_a_model_below_the_gate_unregistered(prepared: Pipeline, baseline: object,
                                                                    fresh: Pipeline) -> None:
    events = gated_run(prepared, baseline, fresh, broken="")
    assert not of_type(events, ModelRegistered)
    result = check_quality_gate(events)
    assert result.verdict == "pass", result.evidence


def test_register_below_gate_is_caught(prepared: Pipeline, baseline: object, fresh: Pipeline) -> None:
    events = gated_run(prepared, baseline, fresh, broken="register-below-gate")
    assert of_type(events, ModelRegistered)
    result = check_quality_gate(events)
    assert result.verdict == "fail", result.evidence
    assert any("after its evaluation failed the gate" in line for line in result.evidence)

