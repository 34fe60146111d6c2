"""A real game day on the embedded cluster: two faults, its reports, its replay, the trend, and an interrupted night.

``gamedays/short.yaml`` with seed 2 draws one run with a network delay on the S3 link and a forced kill of
training (about 90 s each night, cluster start included).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from harness.undo import UndoLog, group_members

ROOT = Path(__file__).resolve().parents[2]
SHORT = ROOT / "gamedays" / "short.yaml"


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "HARNESS_STATE_DIR": str(tmp_path / "state"), "PYTHONUNBUFFERED": "1"}


def _mlchaos(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=ROOT, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=600, check=False)


def _night(results: Path, before: set[str]) -> Path:
    (night,) = [p for p in results.iterdir() if p.is_dir() and p.name not in before]
    return night


def _records(night: Path) -> list[dict[str, Any]]:
    return list(json.loads((night / "faults.json").read_text()))


@pytest.fixture(scope="module")
def two_nights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, str]:
    """The short game day, then its replay from schedule.json; returns (results, first, replay, trend output)."""
    tmp = tmp_path_factory.mktemp("gameday")
    results = tmp / "results"
    first = _mlchaos(tmp, "gameday", "--duration", "60s", "--seed", "2", "--file", str(SHORT),
                     "--results", str(results))
    assert first.returncode in (0, 1), first.stdout + first.stderr
    night = _night(results, set())
    time.sleep(1.1)  # night folders are named by the second they started
    replay = _mlchaos(tmp, "gameday", "--replay", str(night / "schedule.json"), "--file", str(SHORT),
                      "--results", str(results))
    assert replay.returncode in (0, 1), replay.stdout + replay.stderr
    again = _night(results, {night.name})
    trend = _mlchaos(tmp, "trend", "--results", str(results))
    assert trend.returncode in (0, 1), trend.stdout + trend.stderr
    assert UndoLog(tmp / "state" / "undo").pending() == []
    return results, night, again, trend.stdout


def test_a_night_injects_its_two_faults_and_writes_its_reports(two_nights: tuple[Path, Path, Path, str]) -> None:
    _, night, _, _ = two_nights
    summary = json.loads((night / "summary.json").read_text())
    assert summary["seed"] == 2 and summary["status"] in ("passed", "failed")
    assert summary["figures"]["faults"] == {"network-delay": 1, "pod-delete": 1}
    assert summary["figures"]["runs_completed"] == 1
    assert 0 < summary["figures"]["goodput"] < 1
    assert summary["figures"]["mttr_p50"] is not None  # the forced kill ended a training attempt
    (run,) = summary["runs"]
    assert {c[0] for c in run["checks"]} >= {"resume-from-checkpoint", "zero-duplicate-artifacts"}
    assert [r["status"] for r in _records(night)] == ["injected", "injected"]
    page = (night / "report.html").read_text()
    assert "run-01" in page and summary["score_formula"] in page
    suite = ET.parse(night / "junit.xml").getroot()
    assert int(suite.get("tests") or 0) >= len(run["checks"])
    assert (night / "run-01" / "history.jsonl").is_file()


def test_the_replay_injects_the_same_faults_at_the_same_steps(two_nights: tuple[Path, Path, Path, str]) -> None:
    _, night, again, _ = two_nights
    assert (again / "schedule.json").read_bytes() == (night / "schedule.json").read_bytes()
    first, second = _records(night), _records(again)

    def what(record: dict[str, Any]) -> tuple[Any, ...]:
        return (record["fault_id"], record["kind"], record["entry"], record["trigger_step"],
                record["trigger_training_step"], record["status"])

    assert [what(r) for r in first] == [what(r) for r in second]
    for record in first + second:
        # Each fault acts once its run has completed the scheduled step: a few steps later at most (0.2 s polls).
        assert 0 <= record["reached_step"] - record["trigger_training_step"] <= 20, record


def test_the_trend_shows_both_nights(two_nights: tuple[Path, Path, Path, str]) -> None:
    results, night, again, output = two_nights
    page = (results / "trend.html").read_text()
    assert night.name in page and again.name in page
    assert "trend:" in output


def test_an_interrupted_night_keeps_what_it_learned_and_leaves_nothing_behind(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "gameday", "--duration", "60s", "--seed", "2", "--file", str(SHORT),
         "--results", str(tmp_path / "results")],
        cwd=ROOT, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        ready, _, _ = select.select([proc.stdout], [], [], 5)
        if ready:
            line = proc.stdout.readline()
            lines.append(line)
            if "slow-s3 on train" in line:  # the first fault is in
                break
    pids = [r.pid for r in UndoLog(tmp_path / "state" / "undo").pending() if r.kind == "process"]
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = "".join(lines) + out
    assert proc.returncode not in (0, None), output
    night = _night(tmp_path / "results", set())
    summary = json.loads((night / "summary.json").read_text())
    assert summary["status"] == "interrupted", output
    (run,) = summary["runs"]
    assert run["status"] == "interrupted"
    assert {c[1] for c in run["checks"]} == {"unknown"}
    assert (night / "report.html").is_file() and (night / "schedule.json").is_file()
    assert UndoLog(tmp_path / "state" / "undo").pending() == []
    assert [pid for pid in pids if group_members(pid)] == [], "a process of the night outlived it"
