"""pipeline.yaml: loading, validation errors, facts, settings and version."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.workload.declaration import WorkloadError, load_workload
from harness.workload.reference import reference_workload
from harness.workload.settings import PipelineSettings, check_params, run_env, steps_through_training

MINIMAL = """\
name: tiny
version: {files: ["*.py"]}
steps:
  - {name: prep, command: [python, "{dir}/prep.py"]}
  - {name: fit, command: [python, "{dir}/fit.py"], trains: true}
  - {name: publish, command: [python, "{dir}/publish.py"]}
settings:
  train_steps: {env: TRAIN_STEPS, type: int}
  lr: {env: LR, type: float, default: 0.5}
artifacts:
  - {name: ckpt, pattern: '^c/(?P<run>[^/]+)/(?P<step>\\d+)/s\\.pt$', logical: "checkpoint/{run}/{step}", part: state}
  - {name: alias, pattern: '^latest$', mutable: true}
metrics: {last_step_timestamp: my_last_step}
"""


def write(tmp_path: Path, text: str = MINIMAL) -> Path:
    (tmp_path / "fit.py").write_text("print('v1')\n")
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    return path


def test_a_declaration_gives_steps_training_step_layout_and_metrics(tmp_path: Path) -> None:
    w = load_workload(write(tmp_path))
    assert [s.name for s in w.steps] == ["prep", "fit", "publish"]
    assert w.train_step == "fit"
    assert w.steps[1].command == ("python", f"{tmp_path.resolve()}/fit.py")
    assert w.steps[2].after == ("fit",)
    matched = w.layout.match("c/run-1/000300/s.pt")
    assert matched is not None and matched.logical_id == "checkpoint/run-1/300" and matched.step == 300
    assert w.layout.match("elsewhere/x") is None
    assert w.facts().metrics.last_step_timestamp == "my_last_step"
    assert w.facts().metrics.checkpoint_failures == "pipeline_checkpoint_failures_total"  # the probe's default
    assert [s.name for s in steps_through_training(w)] == ["prep", "fit"]


def test_settings_are_typed_defaulted_and_passed_as_env(tmp_path: Path) -> None:
    w = load_workload(write(tmp_path))
    params = check_params(w, {"train_steps": 40}, source="exp.yaml")
    env = run_env(w, PipelineSettings(seed=3, params=params))
    assert env["TRAIN_STEPS"] == "40" and env["LR"] == "0.5" and env["SEED"] == "3" and env["PIPELINE_NAME"] == "tiny"
    with pytest.raises(WorkloadError, match=r"does not accept setting.*model_size.*declares: lr, train_steps"):
        check_params(w, {"model_size": "large"}, source="exp.yaml")
    with pytest.raises(WorkloadError, match="train_steps must be int"):
        check_params(w, {"train_steps": "many"}, source="exp.yaml")


def test_the_version_changes_with_the_code_and_the_declaration(tmp_path: Path) -> None:
    path = write(tmp_path)
    before = load_workload(path).version()
    assert load_workload(path).version() == before
    (tmp_path / "fit.py").write_text("print('v2')\n")
    after_code = load_workload(path).version()
    assert after_code != before
    path.write_text(MINIMAL.replace("lr:", "learning_rate:"))
    assert load_workload(path).version() != after_code


@pytest.mark.parametrize(("change", "message"), [
    (("trains: true", "trains: false"), "exactly one step must say trains: true"),
    (("name: tiny", "name: Tiny_Pipeline"), "name must be"),
    (("metrics: {last_step_timestamp: my_last_step}", "metrics: {steps_per_second: x}"),
     "unknown key.*steps_per_second"),
    (('logical: "checkpoint/{run}/{step}"', 'logical: "checkpoint/{run}/{shard}"'), "uses {shard}"),
    (("pattern: '^latest$', mutable: true", "pattern: '^latest$'"), "logical id template, or mark it mutable"),
    (("command: [python, \"{dir}/publish.py\"]", "command: [python], after: [nowhere]"), "runs after 'nowhere'"),
    (("steps:", "stages:"), "unknown key.*stages"),
])
def test_a_bad_declaration_is_one_line_naming_the_problem(tmp_path: Path, change: tuple[str, str],
                                                           message: str) -> None:
    assert change[0] in MINIMAL
    with pytest.raises(WorkloadError, match=message) as info:
        load_workload(write(tmp_path, MINIMAL.replace(*change)))
    assert "\n" not in str(info.value) and "pipeline.yaml" in str(info.value)


def test_a_missing_or_unparsable_declaration_says_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match=r"no such pipeline declaration.*--pipeline FILE"):
        load_workload(tmp_path / "absent.yaml")
    with pytest.raises(WorkloadError, match="not valid YAML at line"):
        load_workload(write(tmp_path, "name: [unclosed\n"))


def test_the_reference_pipeline_is_a_declaration_like_any_other() -> None:
    w = reference_workload()
    assert w.name == "reference" and w.train_step == "train"
    assert [s.name for s in steps_through_training(w)] == ["ingest", "validate", "features", "train"]
    state = w.layout.match("runs/reference/2026-11-21/r1/checkpoints/step-000100/state.pt")
    manifest = w.layout.match("runs/reference/2026-11-21/r1/checkpoints/step-000100/MANIFEST.json")
    assert state is not None and manifest is not None
    assert state.logical_id == manifest.logical_id == "checkpoint/r1/100"
    assert (state.rule.part, manifest.rule.part, manifest.rule.references) == ("state", "manifest", "state_key")
    alias = w.layout.match("registry/reference/aliases/latest")
    assert alias is not None and alias.rule.mutable


def test_the_check_tests_layout_fixture_is_the_reference_pipelines_declared_layout() -> None:
    from tests.checks.layouts import LAYOUT

    assert reference_workload().layout == LAYOUT
