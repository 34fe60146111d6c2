"""``--cluster existing`` end to end, against a cluster started with ``mlchaos cluster up`` and reached only
through its kubeconfig context, as a staging cluster would be.

The five experiments pass there; a context nobody allowed is refused with nothing created; node faults are
refused without ``--allow-node-faults``; a canary in another namespace is left untouched; ``heal --context``
cleans up after a SIGKILLed run, from this machine's undo log and from the cluster's own labels alike.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client, config

from harness.cluster.kube.manifests import CORDONED_BY_ANNOTATION
from harness.undo import UndoLog
from tests.verdicts import failing_behaviour_in_summary

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = "mlchaos-embedded"


@dataclass(frozen=True)
class UpCluster:
    kubeconfig: Path
    state: Path  # HARNESS_STATE_DIR of the cluster up process
    core: client.CoreV1Api

    def env(self, state: Path, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "HARNESS_ALLOWED_CONTEXTS"}
        return {**env, "HARNESS_STATE_DIR": str(state), "PYTHONUNBUFFERED": "1", **extra}

    def mlchaos(self, *args: str, state: Path, timeout: float = 900, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=ROOT, env=self.env(state, **env),
                              capture_output=True, text=True, timeout=timeout)

    def run_args(self, tmp_path: Path, *experiments: str) -> list[str]:
        return ["run", *(str(ROOT / "experiments" / e) for e in experiments), "--cluster", "existing",
                "--context", CONTEXT, "--kubeconfig", str(self.kubeconfig), "--reports", str(tmp_path / "reports")]

    def run_namespaces(self) -> list[str]:
        return [n.metadata.name for n in self.core.list_namespace().items
                if n.metadata.name.startswith("mlchaos-") and n.status.phase != "Terminating"]


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpCluster]:
    """``mlchaos cluster up`` in its own process, stopped with ``mlchaos cluster down``."""
    base = tmp_path_factory.mktemp("cluster-up")
    kubeconfig, state = base / "kubeconfig", base / "state"
    env = {**os.environ, "HARNESS_STATE_DIR": str(state), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "cluster", "up", "--kubeconfig", str(kubeconfig)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
    seen: list[str] = []
    while not any("stop with Ctrl-C" in line for line in seen):
        try:
            seen.append(lines.get(timeout=120))
        except queue.Empty:
            proc.kill()
            raise AssertionError("cluster up did not come up: " + "".join(seen)) from None
    api = config.new_client_from_config(config_file=str(kubeconfig), context=CONTEXT)
    try:
        yield UpCluster(kubeconfig=kubeconfig, state=state, core=client.CoreV1Api(api))
    finally:
        down = subprocess.run([sys.executable, "-m", "harness.cli", "cluster", "down"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        proc.wait(timeout=60)
        api.close()
    assert "stopped the cluster" in down.stdout, down.stdout + down.stderr
    assert not kubeconfig.exists(), "cluster down left its kubeconfig behind"
    assert UndoLog(state / "undo").pending() == [], "cluster up left undo records behind"


def test_cluster_up_advertises_its_services(up: UpCluster) -> None:
    data = up.core.read_namespaced_config_map("mlchaos-services", "kube-public").data
    assert data["s3-endpoint"].startswith("http://127.0.0.1:") and data["prometheus-url"].startswith("http://")
    assert data["s3-proxy-control-url"] and data["s3-test-credentials"] == "true"


def test_a_context_not_on_the_allowlist_is_refused_before_anything_is_created(up: UpCluster, tmp_path: Path) -> None:
    before = up.run_namespaces()
    done = up.mlchaos(*up.run_args(tmp_path, "pod-delete.yaml"), state=tmp_path / "state",
                      HARNESS_ALLOWED_CONTEXTS="staging-eu,other")
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"context '{CONTEXT}' is not on the allowlist" in done.stderr
    assert "--allow-context" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert up.run_namespaces() == before
    assert not (tmp_path / "reports").exists()


# The experiments of the staging runbook; the ML failure modes that act through a node refuse on this backend by
# design (their own tests cover that), and the others are run on the embedded cluster.
FIVE = ("pod-delete.yaml", "node-drain.yaml", "network-delay.yaml", "storage-throttle.yaml", "concurrent-backfill.yaml")

def test_node_faults_are_refused_without_allow_node_faults(up: UpCluster, tmp_path: Path) -> None:
    before = up.run_namespaces()
    done = up.mlchaos(*up.run_args(tmp_path, "node-drain.yaml"), "--allow-context", CONTEXT,
                      state=tmp_path / "state")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "node faults are not allowed" in done.stderr and "--allow-node-faults" in done.stderr
    assert up.run_namespaces() == before
    assert all(not n.spec.unschedulable for n in up.core.list_node().items)


def test_the_five_experiments_pass_through_a_kubeconfig_context_and_touch_nothing_else(
        up: UpCluster, tmp_path: Path) -> None:
    canary_ns = "team-canary"
    up.core.create_namespace({"metadata": {"name": canary_ns}})
    canary = up.core.create_namespaced_config_map(canary_ns, {"metadata": {"name": "canary"},
                                                              "data": {"keep": "me"}})
    try:
        done = up.mlchaos(*up.run_args(tmp_path, *FIVE), "--allow-context", CONTEXT, "--allow-node-faults",
                          "--node-selector", "kubernetes.io/os=linux", state=tmp_path / "state", timeout=1500)
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-4000:]
        assert "PASSED" in output
        summary = json.loads((tmp_path / "reports" / "latest" / "summary.json").read_text())
        assert {e["name"] for e in summary["experiments"]} == {Path(e).stem for e in FIVE}
        assert failing_behaviour_in_summary(summary) == {}
        after = up.core.read_namespaced_config_map("canary", canary_ns)
        assert after.metadata.resource_version == canary.metadata.resource_version
        assert up.core.read_namespace(canary_ns).status.phase == "Active"
        assert up.run_namespaces() == []
        assert all(not n.spec.unschedulable for n in up.core.list_node().items)
        assert UndoLog(tmp_path / "state" / "undo").pending() == []
        assert not (tmp_path / "reports" / "latest" / "kubeconfig").exists(), "a staging kubeconfig was copied"
    finally:
        up.core.delete_namespace(canary_ns)


@pytest.mark.parametrize("healer", ["this machine", "another machine"])
def test_heal_after_a_sigkilled_run_removes_its_namespace_and_undoes_its_cordon(
        up: UpCluster, tmp_path: Path, healer: str) -> None:
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *up.run_args(tmp_path, "node-drain.yaml"), "--allow-context", CONTEXT,
         "--allow-node-faults"], cwd=ROOT, env=up.env(state), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not [n for n in up.core.list_node().items if (n.metadata.annotations or {}).get(CORDONED_BY_ANNOTATION)]:
            assert proc.poll() is None and time.monotonic() < deadline, "the run never cordoned a node"
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert up.run_namespaces(), "the killed run's namespace should still be there"
    if healer == "this machine":
        done = up.mlchaos("heal", state=state)
    else:  # a fresh machine knows nothing of the run: the cluster's labels and heartbeats tell it
        time.sleep(6)
        done = up.mlchaos("heal", "--context", CONTEXT, "--kubeconfig", str(up.kubeconfig), "--allow-context",
                          CONTEXT, "--stale-seconds", "5", state=tmp_path / "elsewhere")
        assert "deleted namespace mlchaos-" in done.stdout and "uncordoned node" in done.stdout, done.stdout
    assert done.returncode == 0, done.stdout + done.stderr
    assert up.run_namespaces() == []
    nodes = up.core.list_node().items
    assert all(not n.spec.unschedulable for n in nodes)
    assert all(CORDONED_BY_ANNOTATION not in (n.metadata.annotations or {}) for n in nodes)
