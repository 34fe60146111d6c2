from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.baseline import compare, load_scores
from harness.errors import HarnessError


def summary(path: Path, score: float, experiments: dict[str, float]) -> Path:
    rows = [{"name": n, "score": s} for n, s in experiments.items()]
    path.write_text(json.dumps({"score": score, "experiments": rows}))
    return path


def test_a_drop_within_the_allowance_passes_and_beyond_it_fails(tmp_path):
    base = load_scores(summary(tmp_path / "b.json", 90.0, {"pod-delete": 90.0}))
    assert compare(baseline=base, score=86.0, experiments={"pod-delete": 86.0}, max_drop=5).passed
    failed = compare(baseline=base, score=84.0, experiments={"pod-delete": 84.0}, max_drop=5)
    assert not failed.passed and failed.drop == pytest.approx(6.0)


def test_a_missing_or_malformed_baseline_is_a_clear_error(tmp_path):
    with pytest.raises(HarnessError, match="does not exist"):
        load_scores(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(HarnessError, match="not a summary.json"):
        load_scores(tmp_path / "bad.json")


def test_cli_compare_exits_1_on_a_regression(tmp_path):
    base = summary(tmp_path / "b.json", 100.0, {"a": 100.0})
    now = summary(tmp_path / "n.json", 75.0, {"a": 75.0})
    run = [sys.executable, "-m", "harness.cli", "compare", str(base), str(now)]
    proc = subprocess.run(run, capture_output=True, text=True)
    assert proc.returncode == 1 and "REGRESSION" in proc.stdout
    proc = subprocess.run([*run, "--max-drop", "30"], capture_output=True, text=True)
    assert proc.returncode == 0
