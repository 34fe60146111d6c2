"""The embedded cluster: a real control plane with process nodes, its services, and nothing left behind."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from kubernetes import client, config

from harness.cluster.base import JobSpec
from harness.cluster.embedded.cluster import EmbeddedCluster, NodeShape
from harness.environment import embedded_environment
from harness.errors import ServiceError
from harness.undo import UndoLog, group_members, heal, process_start_ticks
from tests.cluster.conftest import Collector, wait_until

ROOT = Path(__file__).resolve().parents[2]

METRICS_POD = textwrap.dedent(
    """
    import os, time
    from prometheus_client import Counter, start_http_server
    start_http_server(int(os.environ["METRICS_PORT"]), addr="127.0.0.1")
    ticks = Counter("pod_selftest_ticks", "ticks")
    while True:
        ticks.inc()
        time.sleep(0.1)
    """
)


def query(base: str, promql: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as resp:
        return list(json.load(resp)["data"]["result"])


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_prometheus_scrapes_the_pods_it_finds_through_the_api(undo: UndoLog, collector: Collector) -> None:
    with embedded_environment(run="scrape") as env:
        workdir = env.logs_dir.parent if env.logs_dir else Path("/nonexistent")
        env.cluster.submit_job(JobSpec(name="metrics", command=("python", "-c", METRICS_POD), metrics_port=9100),
                               sink=collector)
        deadline = time.monotonic() + 40
        while not (up := query(env.prometheus_url, 'up{job="metrics"} == 1')):
            assert time.monotonic() < deadline, "Prometheus never scraped the pod"
            time.sleep(0.2)
        assert up[0]["metric"]["node"] in ("node-a", "node-b")
        assert up[0]["metric"]["namespace"] == "mlchaos-scrape"
        while not query(env.prometheus_url, 'pod_selftest_ticks_total{job="metrics"} > 0'):
            assert time.monotonic() < deadline, "no pod metric in Prometheus"
            time.sleep(0.2)
        api = client.CoreV1Api(config.new_client_from_config(config_file=str(env.kubeconfig)))
        pods = api.list_namespaced_pod("mlchaos-scrape").items
        assert [p.status.phase for p in pods] == ["Running"]
        env.cluster.delete_job("metrics")
        pids = [r.pid for r in undo.pending() if r.kind == "process"]
        assert len(pids) >= 8  # etcd, apiserver, controller-manager, scheduler, 2 agents, moto, Prometheus
    assert not workdir.exists()
    assert undo.pending() == []
    assert all(group_members(pid) == [] for pid in pids)


def test_heartbeats_keep_nodes_ready_and_a_stopped_agent_turns_its_node_not_ready(undo: UndoLog) -> None:
    with EmbeddedCluster(undo=undo, nodes={"node-a": NodeShape(pods=1), "node-b": NodeShape(pods=1)}) as cluster:
        api = client.CoreV1Api(config.new_client_from_config(config_file=str(cluster.kubeconfig)))

        def ready(name: str) -> str:
            node = api.read_node(name)
            return next(c.status for c in node.status.conditions if c.type == "Ready")

        cluster.stop_agent("node-b")
        wait_until(lambda: ready("node-b") == "Unknown", timeout=60, what="node-b to stop being Ready")
        assert ready("node-a") == "True", "node-a's agent kept it Ready all along"


def test_a_missing_control_plane_build_is_one_clear_error_and_nothing_is_left(
        undo: UndoLog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_KUBERNETES_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ServiceError, match=r"kube-apiserver v1\.20\.2 is not in .*make setup"):
        with EmbeddedCluster(undo=undo):
            pass
    assert undo.pending() == []


CHILD = textwrap.dedent(
    """
    import json, time
    from urllib.parse import urlsplit
    from harness.cluster.base import JobSpec
    from harness.environment import embedded_environment
    from harness.lifecycle import install_signal_handlers

    install_signal_handlers()
    with embedded_environment(run="child") as env:
        stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
        env.cluster.submit_job(JobSpec(name="stubborn", command=("python", "-c", stubborn),
                                       termination_grace_period_seconds=1), sink=lambda e: None)
        # OnFailure: while heal runs, the node agent restarts this container when heal kills it.
        env.cluster.submit_job(JobSpec(name="sleepy", command=("sleep", "600"), restart_policy="OnFailure"),
                               sink=lambda e: None)
        while sum(p.phase == "Running" for p in env.cluster.list_pods()) < 2:
            time.sleep(0.05)
        urls = [env.s3_direct_url, env.prometheus_url]  # the fault proxy runs inside the harness process
        ports = [urlsplit(u).port for u in urls]
        print(json.dumps({"ports": ports, "workdir": str(env.logs_dir.parent), "kubeconfig": str(env.kubeconfig)}),
              flush=True)
        while True:
            time.sleep(1)
    """
)


def start_child(tmp_path: Path) -> tuple[subprocess.Popen[str], dict[str, Any], UndoLog]:
    state = tmp_path / "state"
    env = {**os.environ, "HARNESS_STATE_DIR": str(state), "PYTHONPATH": str(ROOT)}
    env.pop("HARNESS_S3_ENDPOINT", None)
    child = subprocess.Popen([sys.executable, "-c", CHILD], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, cwd=ROOT)
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], 120)
    if not ready:
        child.kill()
        raise AssertionError("the child harness did not start its cluster in 120 s")
    line = child.stdout.readline()
    if not line:
        child.wait()
        raise AssertionError(f"the child harness failed: {child.stderr.read() if child.stderr else ''}")
    info = json.loads(line)
    server = config.new_client_from_config(config_file=info["kubeconfig"]).configuration.host
    info["ports"].append(urlsplit(server).port)
    return child, info, UndoLog(state / "undo")


def live_processes(pids: list[int]) -> list[int]:
    return [pid for pid in pids if process_start_ticks(pid) is not None or group_members(pid)]


def test_sigterm_to_the_harness_leaves_nothing_behind(tmp_path: Path) -> None:
    child, info, undo = start_child(tmp_path)
    pids = [r.pid for r in undo.pending() if r.kind == "process"]
    try:
        assert len(pids) == 10  # etcd, apiserver, controller-manager, scheduler, 2 agents, moto, Prometheus, 2 pods
        assert live_processes(pids) == pids
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=90)
    assert live_processes(pids) == []
    assert not any(listening(port) for port in info["ports"])
    assert not Path(info["workdir"]).exists()
    assert undo.pending() == []


def test_a_sigkilled_harness_is_healed(tmp_path: Path) -> None:
    import harness.cluster.kube.undo_kinds  # noqa: F401  # heal undoes the namespace, as `mlchaos heal` does

    child, info, undo = start_child(tmp_path)
    records = undo.pending()
    pids = [r.pid for r in records if r.kind == "process"]
    child.kill()
    child.wait(timeout=10)
    try:
        assert live_processes(pids) == pids  # orphans: only the undo records know them now
        assert all(listening(port) for port in info["ports"])
    finally:
        healed = heal(undo)  # also when an assertion failed: a failing test leaves nothing running
    assert len(healed) >= len(records)  # and any container a still-living agent restarted meanwhile
    assert live_processes(pids) == []
    assert not any(listening(port) for port in info["ports"])
    assert not Path(info["workdir"]).exists()
    assert undo.pending() == []
    assert heal(undo) == []
