"""Which pipeline an experiment runs: --pipeline, else the experiment's ``workload``, else the reference;
its settings are checked against that pipeline's declaration before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ExperimentError
from harness.experiment.loader import load_experiment
from harness.workload.declaration import load_workload

from .test_declaration import write as write_declaration

ROOT = Path(__file__).resolve().parents[2]
POD_DELETE = ROOT / "experiments" / "pod-delete.yaml"


def experiment(tmp_path: Path, *, workload: str | None = None, settings: str = "") -> Path:
    text = POD_DELETE.read_text()
    if workload is not None:
        head = "  - name: harness\n    weight: 1\n"
        text = text.replace(head, f"{head}    workload: {workload}\n")
    if settings:
        text = text.replace("      seed: 7\n", f"      seed: 7\n{settings}")
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def test_without_a_choice_the_reference_pipeline_runs(tmp_path: Path) -> None:
    spec = load_experiment(experiment(tmp_path, settings="      model_size: large\n"))
    assert spec.workload.name == "reference"
    assert spec.pipeline.params == {"model_size": "large"} and spec.pipeline.seed == 7


def test_the_experiment_names_its_pipeline_relative_to_itself(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    write_declaration(tmp_path / "mine")
    spec = load_experiment(experiment(tmp_path, workload="mine/pipeline.yaml", settings="      train_steps: 30\n"))
    assert spec.workload.name == "tiny" and spec.pipeline.params == {"train_steps": 30}


def test_pipeline_option_overrides_the_experiment(tmp_path: Path) -> None:
    mine = load_workload(write_declaration(tmp_path))
    assert load_experiment(POD_DELETE, workload=mine).workload.name == "tiny"


def test_a_setting_the_chosen_pipeline_does_not_declare_is_refused(tmp_path: Path) -> None:
    mine = load_workload(write_declaration(tmp_path))
    path = experiment(tmp_path, settings="      model_size: large\n")
    with pytest.raises(ExperimentError, match=r"pipeline tiny does not accept setting.*model_size") as info:
        load_experiment(path, workload=mine)
    assert "\n" not in str(info.value)


def test_a_missing_pipeline_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ExperimentError, match="no such pipeline declaration"):
        load_experiment(experiment(tmp_path, workload="absent/pipeline.yaml"))

