"""The late-data experiment on the embedded cluster, end to end: the daily run waits for two late
hours and succeeds, the run of a day with a missing hour is refused at validate and never trains;
with ``accept-partial-day`` that run trains on 23 hours and ``no-training-on-partial-data`` fails."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from harness.experiment.loader import load_experiment
from harness.history.events import FaultHealed, InputsWaiting, TrainingStarted, of_type
from harness.history.store import load
from harness.suite_runner import SuiteRunner
from tests.verdicts import failing_behaviour

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = ROOT / "experiments" / "late-data.yaml"


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SuiteRunner]:
    runner = SuiteRunner(reports_root=tmp_path_factory.mktemp("reports"), min_score=0, progress=lambda _: None)
    yield runner
    runner.close()


def test_late_hours_are_waited_for_and_a_partial_day_is_refused(runner: SuiteRunner) -> None:
    result = runner.run(load_experiment(EXPERIMENT))
    verdicts = {c.name: (c.verdict, c.evidence) for c in result.checks}
    for name in ("no-training-on-partial-data", "lineage", "zero-duplicate-artifacts", "steady-state"):
        assert verdicts[name][0] == "pass", verdicts
    assert failing_behaviour(result.checks) == {}
    events = load(result.history_path)
    trained = {e.run_id for e in of_type(events, TrainingStarted)}
    assert trained == {result.run_id}  # the partial day's run never trained
    waited = {e.run_id for e in of_type(events, InputsWaiting)}
    assert waited == {result.run_id, f"{result.run_id}-partial"}
    assert all("restored" in e.detail or "landed late" in e.detail for e in of_type(events, FaultHealed))


def test_a_pipeline_that_accepts_a_partial_day_is_caught(runner: SuiteRunner) -> None:
    spec = load_experiment(EXPERIMENT)
    spec = replace(spec, name="late-data-accept-partial-day",
                   pipeline=spec.pipeline.with_params(broken="accept-partial-day"))
    result = runner.run(spec)
    check = next(c for c in result.checks if c.name == "no-training-on-partial-data")
    assert check.verdict == "fail", check.evidence
    # Both runs trained on a partial day: the daily run did not wait for its late hours either.
    assert any(line.startswith(f"run {result.run_id}-partial trained on features built") for line in check.evidence)
    assert any(line.startswith(f"run {result.run_id} trained on features built") for line in check.evidence)
