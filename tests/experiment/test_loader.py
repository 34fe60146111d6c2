from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ExperimentError
from harness.experiment.loader import load_experiment

ROOT = Path(__file__).resolve().parents[2]
POD_DELETE = ROOT / "experiments" / "pod-delete.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def test_the_shipped_pod_delete_experiment_is_valid():
    spec = load_experiment(POD_DELETE)
    assert spec.name == "pod-delete"
    assert [c.name for c in spec.checks] == ["zero-duplicate-artifacts", "resume-from-checkpoint", "lineage",
                                            "quality-gate", "steady-state"]
    assert [s.name for s in spec.slos] == ["training-stall", "checkpoint-save-p95", "checkpoint-failures"]


def test_malformed_yaml_is_one_clear_line(tmp_path):
    with pytest.raises(ExperimentError) as err:
        load_experiment(write(tmp_path, "title: [unclosed\nmethod: -"))
    assert "not valid YAML" in str(err.value) and "\n" not in str(err.value)


def test_unknown_action_is_rejected(tmp_path):
    text = POD_DELETE.read_text().replace("func: terminate_pods", "func: terminate_pods_typo", 1)
    with pytest.raises(ExperimentError) as err:
        load_experiment(write(tmp_path, text))
    assert "terminate_pods_typo" in str(err.value)


def test_unknown_module_is_rejected(tmp_path):
    text = POD_DELETE.read_text().replace("module: harness.chaosext.pod.actions", "module: harness.nope", 1)
    with pytest.raises(ExperimentError, match="invalid experiment"):
        load_experiment(write(tmp_path, text))


def test_unknown_check_is_rejected(tmp_path):
    text = POD_DELETE.read_text().replace("name: steady-state", "name: vibes")
    with pytest.raises(ExperimentError, match="unknown check 'vibes'"):
        load_experiment(write(tmp_path, text))


def test_bad_pipeline_setting_type_is_rejected(tmp_path):
    text = POD_DELETE.read_text().replace("seed: 7", "seed: seven")
    with pytest.raises(ExperimentError, match="seed must be int"):
        load_experiment(write(tmp_path, text))


def test_missing_extension_is_rejected(tmp_path):
    text = POD_DELETE.read_text().replace("  - name: harness\n    weight: 1", "  - name: other\n    weight: 1")
    with pytest.raises(ExperimentError, match="no extensions entry named 'harness'"):
        load_experiment(write(tmp_path, text))


def test_missing_file(tmp_path):
    with pytest.raises(ExperimentError, match="no such experiment file"):
        load_experiment(tmp_path / "nope.yaml")
