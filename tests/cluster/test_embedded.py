"""The embedded cluster: S3, Prometheus and the process cluster together, and nothing left behind."""

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

import pytest

from harness.cluster.base import JobSpec
from harness.cluster.embedded import EmbeddedCluster
from harness.errors import HarnessError
from harness.undo import UndoLog, group_members, heal, process_start_ticks

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
        return json.load(resp)["data"]["result"]


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_embedded_cluster_serves_s3_and_scrapes_pods(tmp_path: Path, undo: UndoLog, collector: Any) -> None:
    import boto3

    with EmbeddedCluster(undo=undo) as cluster:
        workdir = cluster.workdir
        assert workdir.is_dir()
        prom = cluster.endpoint("prometheus")
        s3 = cluster.endpoint("s3")
        with pytest.raises(HarnessError, match="unknown service 'redis'"):
            cluster.endpoint("redis")
        client = boto3.client("s3", endpoint_url=s3, region_name="us-east-1",
                              aws_access_key_id="x", aws_secret_access_key="x")
        client.create_bucket(Bucket="artifacts")
        assert [b["Name"] for b in client.list_buckets()["Buckets"]] == ["artifacts"]

        cluster.submit_job(JobSpec(name="metrics", command=(sys.executable, "-c", METRICS_POD), expose_metrics=True),
                           sink=collector)
        deadline = time.monotonic() + 40
        while not (up := query(prom, 'up{pod="metrics-0"} == 1')):
            assert time.monotonic() < deadline, "Prometheus never scraped the pod"
            time.sleep(0.2)
        assert up[0]["metric"]["job"] == "metrics" and up[0]["metric"]["node"] == "node-a"
        while not query(prom, 'pod_selftest_ticks_total{pod="metrics-0"} > 0'):
            assert time.monotonic() < deadline, "no pod metric in Prometheus"
            time.sleep(0.2)
        assert [n.name for n in cluster.nodes()] == ["node-a", "node-b"]
        cluster.delete_pod("metrics-0", grace_period_seconds=5)
        targets = json.loads((workdir / "prometheus" / "targets" / "pods.json").read_text())
        assert targets == []  # a stopped pod is no longer a target
        pids = [r.pid for r in undo.pending() if r.kind == "process"]
        assert len(pids) >= 2
    assert not workdir.exists()
    assert undo.pending() == []
    assert all(group_members(pid) == [] for pid in pids)
    with pytest.raises(HarnessError, match="not running"):
        cluster.endpoint("s3")


def test_keep_workdir(undo: UndoLog) -> None:
    with EmbeddedCluster(undo=undo, keep_workdir=True, nodes={"n": 1}) as cluster:
        workdir = cluster.workdir
    try:
        assert workdir.is_dir() and undo.pending() == []
    finally:
        import shutil

        shutil.rmtree(workdir)


def test_failed_start_stops_what_started(undo: UndoLog, tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="not found on PATH"):
        with EmbeddedCluster(undo=undo, prometheus_binary="no-such-prometheus"):
            pass
    assert undo.pending() == []  # moto stopped, temp workdir removed


CHILD = textwrap.dedent(
    """
    import json, sys, time
    from harness.cluster.base import JobSpec
    from harness.cluster.embedded import EmbeddedCluster
    from harness.lifecycle import install_signal_handlers

    install_signal_handlers()
    with EmbeddedCluster(nodes={"node-a": 2}) as cluster:
        stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
        cluster.submit_job(
            JobSpec(name="stubborn", command=(sys.executable, "-c", stubborn), termination_grace_period_seconds=1),
            sink=lambda e: None,
        )
        cluster.submit_job(JobSpec(name="sleepy", command=("sleep", "600")), sink=lambda e: None)
        while sum(p.phase == "Running" for p in cluster.list_pods()) < 2:
            time.sleep(0.05)
        ports = [int(u.rsplit(":", 1)[1]) for u in (cluster.endpoint("s3"), cluster.endpoint("prometheus"))]
        print(json.dumps({"ports": ports, "workdir": str(cluster.workdir)}), flush=True)
        while True:
            time.sleep(1)
    """
)


def start_child(tmp_path: Path) -> tuple[subprocess.Popen[str], dict[str, Any], UndoLog]:
    state = tmp_path / "state"
    env = {**os.environ, "HARNESS_STATE_DIR": str(state), "PYTHONPATH": str(ROOT)}
    env.pop("HARNESS_S3_ENDPOINT", None)
    child = subprocess.Popen([sys.executable, "-c", CHILD], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, cwd=tmp_path)
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], 90)
    if not ready:
        child.kill()
        raise AssertionError("the child harness did not start its cluster in 90 s")
    line = child.stdout.readline()
    if not line:
        child.wait()
        raise AssertionError(f"the child harness failed: {child.stderr.read() if child.stderr else ''}")
    return child, json.loads(line), UndoLog(state / "undo")


def live_processes(pids: list[int]) -> list[int]:
    return [pid for pid in pids if process_start_ticks(pid) is not None or group_members(pid)]


def test_sigterm_to_harness_leaves_nothing_behind(tmp_path: Path) -> None:
    child, info, undo = start_child(tmp_path)
    pids = [r.pid for r in undo.pending() if r.kind == "process"]
    assert len(pids) == 4  # moto, Prometheus, two pods
    assert live_processes(pids) == pids
    child.send_signal(signal.SIGTERM)
    child.wait(timeout=60)
    assert live_processes(pids) == []
    assert not any(listening(port) for port in info["ports"])
    assert not Path(info["workdir"]).exists()
    assert undo.pending() == []


def test_sigkilled_harness_is_healed(tmp_path: Path) -> None:
    child, info, undo = start_child(tmp_path)
    records = undo.pending()
    pids = [r.pid for r in records if r.kind == "process"]
    child.kill()
    child.wait(timeout=10)
    assert live_processes(pids) == pids  # orphans: only the undo records know them now
    assert all(listening(port) for port in info["ports"])
    healed = heal(undo)
    assert len(healed) == len(records)  # 4 processes, the TSDB dir and the workdir
    assert live_processes(pids) == []
    assert not any(listening(port) for port in info["ports"])
    assert not Path(info["workdir"]).exists()
    assert undo.pending() == []
    assert heal(undo) == []
