from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.checks.interruptions import fault_outcomes
from harness.checks.resume import check_resume
from harness.checks.steady_state import check_steady_state
from harness.evidence.reference import ReferenceRun
from harness.experiment.result import ExperimentResult
from harness.history.events import to_json
from harness.report.writer import write_reports
from harness.score import experiment_score
from harness.suite import summarize
from tests.checks.histories import RUN, SHA, graceful_then_forced


def suite_from(tmp_path: Path, *, reference: str, min_score: float = 80.0):
    events = graceful_then_forced()
    history = tmp_path / "pod-delete" / "history.jsonl"
    history.parent.mkdir(parents=True)
    history.write_text("".join(to_json(e) + "\n" for e in events))
    checks = (
        check_resume(events, run_id=RUN, reference=ReferenceRun(params_sha256=reference) if reference else None,
                     weight=3),
        check_steady_state(events, weight=1),
    )
    result = ExperimentResult(
        name="pod-delete", title="t", path=Path("experiments/pod-delete.yaml"), run_id=RUN, weight=1.0,
        status="completed", deviated=False, checks=checks, faults=tuple(fault_outcomes(events)),
        score=experiment_score(checks), started_at=events[0].ts, ended_at=events[-1].ts, history_path=history,
        reference_sha256=reference,
    )
    return summarize(run_id="20261122-000000", cluster="embedded", started_at=events[0].ts,
                     ended_at=events[-1].ts, results=[result], min_score=min_score)


def test_reports_hold_the_score_checks_and_faults(tmp_path):
    run_dir = tmp_path / "reports" / "20261122-000000"
    write_reports(suite_from(tmp_path, reference=SHA), run_dir)
    summary = json.loads((tmp_path / "reports" / "latest" / "summary.json").read_text())
    assert summary["score"] == 100.0 and summary["passed"] is True and summary["min_score"] == 80.0
    exp = summary["experiments"][0]
    assert exp["name"] == "pod-delete" and exp["score"] == 100.0
    assert [(c["name"], c["verdict"], c["weight"]) for c in exp["checks"]] == [
        ("resume-from-checkpoint", "pass", 3), ("steady-state", "pass", 1)]
    assert [(f["name"], f["steps_lost"]) for f in exp["faults"]] == [("pod-delete", 0), ("pod-delete", 7)]
    assert all(f["recovery_seconds"] > 0 and f["injected_at"] and f["healed_at"] for f in exp["faults"])
    html = (run_dir / "report.html").read_text()
    assert "data:image/png;base64" in html and "100 * (3 + 1) / 4" in html


def test_a_failed_gate_and_failures_show_in_every_report(tmp_path):
    run_dir = tmp_path / "r" / "x"
    write_reports(suite_from(tmp_path, reference="f" * 64), run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["score"] == 25.0 and summary["passed"] is False
    junit = ET.parse(run_dir / "junit.xml").getroot()
    assert (junit.get("tests"), junit.get("failures"), junit.get("errors")) == ("2", "1", "0")


def test_unknown_is_an_error_in_junit(tmp_path):
    run_dir = tmp_path / "r" / "x"
    write_reports(suite_from(tmp_path, reference=None), run_dir)
    junit = ET.parse(run_dir / "junit.xml").getroot()
    assert junit.get("errors") == "1"
