"""The CLI's answers to bad input: one line, non-zero exit, nothing started."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def mlchaos(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_malformed_experiment_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("title: [oops\n")
    proc = mlchaos("run", str(bad), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "not valid YAML" in proc.stderr
    assert not (tmp_path / "reports").exists()


def test_unknown_action_exits_2(tmp_path):
    text = (ROOT / "experiments" / "pod-delete.yaml").read_text().replace("func: terminate_pods", "func: nuke", 1)
    exp = tmp_path / "exp.yaml"
    exp.write_text(text)
    proc = mlchaos("validate", str(exp), cwd=tmp_path)
    assert proc.returncode == 2 and "nuke" in proc.stderr


def test_validate_accepts_the_shipped_experiments():
    proc = mlchaos("validate", "experiments", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "pod-delete.yaml: ok" in proc.stdout


def _harness_processes() -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    started = ("moto.server", "/usr/bin/prometheus", "/usr/bin/etcd", "kube-apiserver", "kube-controller-manager",
               "kube-scheduler", "node_agent")
    return [line for line in out.splitlines() if any(name in line for name in started)]


def _run_with_path(tmp_path, *binaries: str) -> subprocess.CompletedProcess[str]:
    """``mlchaos run`` with only ``binaries`` (and ``nice``, ``sh`` for pods) on PATH."""
    import os
    import shutil

    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in (*binaries, "nice", "sh"):
        found = shutil.which(name)
        assert found, f"{name} is not installed here"
        (bindir / name).symlink_to(found)
    env = {**os.environ, "PATH": str(bindir), "HARNESS_STATE_DIR": str(tmp_path / "state")}
    return subprocess.run([sys.executable, "-m", "harness.cli", "run", str(ROOT / "experiments" / "pod-delete.yaml"),
                           "--reports", str(tmp_path / "reports")], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180)


def test_missing_prometheus_binary_exits_2_and_leaves_nothing_running(tmp_path):
    before = _harness_processes()
    proc = _run_with_path(tmp_path, "etcd")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "Prometheus binary 'prometheus' not found" in proc.stderr and "apt-get install" in proc.stderr
    assert _harness_processes() == before  # the control plane that had started is stopped again
    assert not list((tmp_path / "state" / "undo").glob("*.json"))


def test_missing_etcd_binary_exits_2_with_the_apt_line(tmp_path):
    before = _harness_processes()
    proc = _run_with_path(tmp_path, "prometheus")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "etcd binary is not on PATH" in proc.stderr and "apt-get install -y etcd-server" in proc.stderr
    assert _harness_processes() == before
    assert not list((tmp_path / "state" / "undo").glob("*.json"))


def test_unreachable_s3_exits_2(tmp_path):
    import os

    env = {**os.environ, "HARNESS_S3_ENDPOINT": "http://127.0.0.1:9", "HARNESS_STATE_DIR": str(tmp_path / "state")}
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(ROOT / "experiments" / "pod-delete.yaml"),
                           "--reports", str(tmp_path / "reports")], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert "S3 endpoint http://127.0.0.1:9 is unreachable" in proc.stderr
