"""The gpu-fragmentation experiment on the embedded cluster, end to end: with the daily run above the
fillers' priority Kubernetes preempts them and the 6-GPU training pod is scheduled within its SLA; with
the fillers at the daily run's priority (the misconfiguration) it stays pending past the SLA."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from harness.experiment.loader import load_experiment
from harness.experiment.model import ExperimentSpec
from harness.suite_runner import SuiteRunner
from tests.verdicts import failing_behaviour

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SuiteRunner]:
    runner = SuiteRunner(reports_root=tmp_path_factory.mktemp("reports"), min_score=0, progress=lambda _: None)
    yield runner
    runner.close()


def _same_priority(spec: ExperimentSpec) -> ExperimentSpec:
    """Fillers at mlchaos-daily: nothing to preempt; a short step timeout ends the stuck run."""
    document = copy.deepcopy(dict(spec.document))
    fragment = next(a for a in document["method"] if a["name"] == "fragment-the-gpus")
    fragment["provider"]["arguments"]["priority_class"] = "mlchaos-daily"
    return replace(spec, name="gpu-fragmentation-same-priority", document=document,
                   pipeline=replace(spec.pipeline, step_timeout_seconds=75.0))


def test_the_daily_training_preempts_fillers_within_its_sla(runner: SuiteRunner) -> None:
    result = runner.run(load_experiment(ROOT / "experiments" / "gpu-fragmentation.yaml"))
    verdicts = {c.name: (c.verdict, c.evidence) for c in result.checks}
    assert verdicts["gpu-schedulable"][0] == "pass", verdicts
    assert "preemptions" in verdicts["gpu-schedulable"][1][0]
    assert verdicts["steady-state"][0] == "pass", verdicts
    assert verdicts["zero-duplicate-artifacts"][0] == "pass", verdicts
    assert failing_behaviour(result.checks) == {}


def test_fillers_at_the_daily_priority_leave_the_training_pending_past_its_sla(runner: SuiteRunner) -> None:
    spec = _same_priority(load_experiment(ROOT / "experiments" / "gpu-fragmentation.yaml"))
    result = runner.run(spec)
    check = next(c for c in result.checks if c.name == "gpu-schedulable")
    assert check.verdict == "fail", check.evidence
    assert "still pending" in check.evidence[0], check.evidence
    assert "while it waited: stranded GPUs max" in check.evidence[0]
    assert next(c for c in result.checks if c.name == "steady-state").verdict == "fail"  # the run timed out
