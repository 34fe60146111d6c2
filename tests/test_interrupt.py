"""An interrupted run is never scored as a pass: SIGTERM (a CI timeout) or SIGINT sent to ``mlchaos run`` alone
stops it within seconds, heals, marks the experiment ``interrupted`` with every check ``unknown``, exits non-zero
and leaves nothing behind."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.undo import UndoLog, group_members

ROOT = Path(__file__).resolve().parents[1]


def _run_until_training(tmp_path: Path) -> tuple[subprocess.Popen[str], list[str]]:
    env = {**os.environ, "HARNESS_STATE_DIR": str(tmp_path / "state"), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", str(ROOT / "experiments" / "pod-delete.yaml"),
         "--reports", str(tmp_path / "reports")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 5)
        if not ready:
            continue
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "action: delete-training-pod-gracefully" in line:  # training is under way
            return proc, lines
    proc.kill()
    raise AssertionError("the run never reached training: " + "".join(lines[-20:]))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_the_harness_alone_stops_the_run_which_is_not_scored_as_passed(tmp_path: Path,
                                                                                    sig: signal.Signals) -> None:
    proc, lines = _run_until_training(tmp_path)
    pids = [r.pid for r in UndoLog(tmp_path / "state" / "undo").pending() if r.kind == "process"]
    proc.send_signal(sig)  # to the harness process only, not its group
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = "".join(lines) + out
    assert proc.returncode not in (0, None), output
    assert "PASSED" not in output
    summary = json.loads((tmp_path / "reports" / "latest" / "summary.json").read_text())
    assert summary["passed"] is False and summary["interrupted"] is True
    (experiment,) = summary["experiments"]
    assert experiment["status"] == "interrupted"
    assert {c["verdict"] for c in experiment["checks"]} == {"unknown"}, experiment["checks"]
    assert UndoLog(tmp_path / "state" / "undo").pending() == []
    assert [pid for pid in pids if group_members(pid)] == [], "a process of the run outlived it"
