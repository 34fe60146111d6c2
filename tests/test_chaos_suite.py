"""`make chaos` as a user runs it: the gate and the reports over many experiments on the embedded cluster.

Every experiment is run end to end in CI, and each must pass every behaviour check: those with a test of their
own (which also plants the bug each one's check must catch) run there, the others here, so none runs twice
in CI's time. The whole folder, as ``make chaos`` runs it, is measured in the README.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.verdicts import failing_behaviour_in_summary

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = {p.stem for p in (ROOT / "experiments").glob("*.yaml")}
WITH_SLOS = {p.stem for p in (ROOT / "experiments").glob("*.yaml") if "\n    slos:" in p.read_text()}

RUN_ELSEWHERE = {
    "pod-delete": "tests/environments/test_existing.py",
    "node-drain": "tests/environments/test_existing.py",
    "network-delay": "tests/environments/test_existing.py",
    "storage-throttle": "tests/environments/test_existing.py",
    "concurrent-backfill": "tests/environments/test_existing.py",
    "late-data": "tests/test_late_data_end_to_end.py",
    "gpu-fragmentation": "tests/test_gpu_fragmentation_end_to_end.py",
    "oom-kill": "tests/test_resource_faults_end_to_end.py",
    "straggler": "tests/test_resource_faults_end_to_end.py",
}
RUN_HERE = sorted(EXPERIMENTS - set(RUN_ELSEWHERE))


def test_every_experiment_is_run_end_to_end_by_some_test() -> None:
    assert set(RUN_ELSEWHERE) <= EXPERIMENTS, set(RUN_ELSEWHERE) - EXPERIMENTS
    for name, test_file in RUN_ELSEWHERE.items():
        text = (ROOT / test_file).read_text()
        assert f"{name}.yaml" in text and "failing_behaviour" in text, (name, test_file)
    assert RUN_HERE, "the suite test must run at least one experiment"


def test_the_chaos_suite_passes_its_gate_and_reports_every_experiment(tmp_path):
    env = {**os.environ, "HARNESS_STATE_DIR": str(tmp_path / "state")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *(f"experiments/{e}.yaml" for e in RUN_HERE), "--chaos-min-score=80",
         "--chaos-reports", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=2700,
    )
    assert "resilience score" in proc.stdout and f"[chaos] [{RUN_HERE[0]} +" in proc.stdout  # progress was shown
    summary = json.loads((tmp_path / "latest" / "summary.json").read_text())
    assert {e["name"] for e in summary["experiments"]} == set(RUN_HERE)
    # SLOs are timings, so whether the gate passes may depend on the machine; that it gates right may not.
    assert summary["passed"] == (summary["score"] >= 80)
    assert proc.returncode == (0 if summary["passed"] else 1), proc.stdout[-4000:]
    assert failing_behaviour_in_summary(summary) == {}
    for exp in summary["experiments"]:
        assert any(c["name"].startswith("slo:") for c in exp["checks"]) == (exp["name"] in WITH_SLOS), exp["name"]
    html = (tmp_path / "latest" / "report.html").read_text()
    assert html.count("data:image/png;base64") == len(RUN_HERE)  # one timeline per experiment
    assert not list((tmp_path / "state" / "undo").glob("*.json"))  # nothing left behind
