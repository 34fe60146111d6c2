"""The oom-kill and straggler experiments on the embedded cluster, end to end: the kernel OOM-kills the training
pod and the retry resumes from its checkpoint (an OOM loop when two attempts in a row are hit); a CPU-throttled
training pod is measured as a straggler and attributed to its pod and node. Needs root and writable cgroup v1
memory and cpu controllers (the node agent's per-container cgroups)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from harness.cluster.embedded.node_agent.pod_cgroups import CPU_ROOT, MEMORY_ROOT
from harness.experiment.loader import load_experiment
from harness.experiment.model import ExperimentSpec
from harness.suite_runner import SuiteRunner
from tests.verdicts import failing_behaviour

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    not (MEMORY_ROOT / "memory.limit_in_bytes").exists() or not (CPU_ROOT / "cpu.cfs_quota_us").exists(),
    reason="needs writable cgroup v1 memory and cpu controllers")


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SuiteRunner]:
    runner = SuiteRunner(reports_root=tmp_path_factory.mktemp("reports"), min_score=0, progress=lambda _: None)
    yield runner
    runner.close()


def _repeated(spec: ExperimentSpec, repeat: int) -> ExperimentSpec:
    """Hit ``repeat`` attempts in a row: each retry dies before it saves a new checkpoint (an OOM loop)."""
    document = copy.deepcopy(dict(spec.document))
    action = next(a for a in document["method"] if a["name"] == "oom-kill-training-pod")
    action["provider"]["arguments"]["repeat"] = repeat
    return replace(spec, name="oom-kill-loop", document=document)


def test_an_oom_killed_training_pod_is_retried_from_its_checkpoint(runner: SuiteRunner) -> None:
    result = runner.run(load_experiment(ROOT / "experiments" / "oom-kill.yaml"))
    verdicts = {c.name: (c.verdict, c.evidence) for c in result.checks}
    assert verdicts["oom-recovered"][0] == "pass", verdicts
    assert verdicts["oom-recovered"][1][0].startswith("transient: 1 OOM kill(s)"), verdicts["oom-recovered"]
    for name in ("resume-from-checkpoint", "zero-duplicate-artifacts", "steady-state"):
        assert verdicts[name][0] == "pass", (name, verdicts[name])
    assert failing_behaviour(result.checks) == {}


def test_two_attempts_killed_in_a_row_are_named_an_oom_loop(runner: SuiteRunner) -> None:
    result = runner.run(_repeated(load_experiment(ROOT / "experiments" / "oom-kill.yaml"), 2))
    check = next(c for c in result.checks if c.name == "oom-recovered")
    assert check.verdict == "pass", check.evidence  # the fault stops after two: the run gets out of the loop
    assert check.evidence[0].startswith("OOM loop: 2 attempts killed"), check.evidence


def test_a_throttled_training_pod_is_detected_as_a_straggler(runner: SuiteRunner) -> None:
    result = runner.run(load_experiment(ROOT / "experiments" / "straggler.yaml"))
    verdicts = {c.name: (c.verdict, c.evidence) for c in result.checks}
    assert verdicts["straggler-detected"][0] == "pass", verdicts
    assert "straggler detected and attributed to pod" in verdicts["straggler-detected"][1][0]
    assert verdicts["steady-state"][0] == "pass", verdicts
    assert verdicts["zero-duplicate-artifacts"][0] == "pass", verdicts
    assert failing_behaviour(result.checks) == {}


def test_a_pipeline_whose_retry_starts_over_after_an_oom_kill_is_caught(runner: SuiteRunner) -> None:
    spec = load_experiment(ROOT / "experiments" / "oom-kill.yaml")
    broken = replace(spec, name="oom-kill-ignore-checkpoint",
                     pipeline=spec.pipeline.with_params(broken="ignore-checkpoint"))
    check = next(c for c in runner.run(broken).checks if c.name == "oom-recovered")
    assert check.verdict == "fail", check.evidence
