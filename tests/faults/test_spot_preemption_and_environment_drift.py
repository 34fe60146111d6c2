"""Spot preemption and environment drift on the embedded Kubernetes cluster, through the recorder:
what they do, that they heal completely (twice harmlessly), and through the undo log after a
simulated killed harness. Serialize runs of this file with the other cluster tests."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from harness.cluster.base import JobSpec, NodeControlUnsupported
from harness.cluster.embedded.cluster import EmbeddedCluster
from harness.cluster.kube.backend import KubernetesCluster
from harness.faults.environment_drift import ENVIRONMENT_DRIFT, EnvironmentDriftParams
from harness.faults.recorder import FaultRecorder
from harness.faults.role import FaultContext
from harness.faults.spot_preemption import SPOT_PREEMPTION, SPOT_TAINT, SpotPreemptionParams
from harness.history.events import EnvironmentReported, FaultHealed, FaultInjected
from harness.undo import UndoLog, heal
from tests.cluster.conftest import Collector, py, wait_until

SLEEPER = py("import time\nwhile True: time.sleep(0.05)")
# Reports what the node's image gave it as an environment event, then sleeps.
REPORTER = py("import json, os, time\n"
              "print(json.dumps({'event': 'environment', 'ts': time.time(), 'run_id': 'r',"
              " 'fingerprint': os.environ.get('IMAGE_DIGEST', 'none'),"
              " 'details': {'precision': os.environ.get('TORCH_MATMUL_PRECISION', '')}}), flush=True)\n"
              "while True: time.sleep(0.05)")


@pytest.fixture
def nodes_cluster(embedded: EmbeddedCluster, undo: UndoLog) -> Iterator[KubernetesCluster]:
    """The backend with the embedded cluster's node agents behind it (what ``mlchaos run`` builds)."""
    run = uuid.uuid4().hex[:8]
    with KubernetesCluster(kubeconfig=embedded.kubeconfig, namespace=f"t-{run}", run=run, undo=undo,
                           flavor="embedded", backfill_pods=1, node_processes=embedded) as backend:
        yield backend
        for node in embedded.node_names:
            embedded.start_agent(node)
            embedded.set_image_env(node, None)
            backend.untaint(node, key=SPOT_TAINT)
            backend.uncordon(node)
    assert undo.pending() == [], "the backend left undo records behind"


def _recorder(cluster: KubernetesCluster, collector: Collector, undo: UndoLog | None = None) -> FaultRecorder:
    return FaultRecorder(sink=collector, experiment="faults", context=FaultContext(cluster=cluster, seed=7, undo=undo))


def _running_pod(cluster: KubernetesCluster, job: str, *, other_than: str = "") -> str:
    found: list[str] = []

    def running() -> bool:
        found[:] = [p.name for p in cluster.list_pods(labels={"job-name": job})
                    if p.phase == "Running" and not p.deleting and p.name != other_than]
        return bool(found)

    wait_until(running, timeout=90, what=f"a running pod of {job}")
    return found[0]


def _taints(kubeconfig: Path, node: str) -> list[str]:
    api = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))
    return [t.key for t in (api.read_node(node).spec.taints or [])]


def _agent_running(embedded: EmbeddedCluster, node: str) -> bool:
    proc = embedded._agents.get(node)  # the test looks inside: is the node's agent process alive?
    return proc is not None and proc.poll() is None


def test_spot_notice_taints_drains_stops_the_node_and_heal_brings_it_back(
        nodes_cluster: KubernetesCluster, embedded: EmbeddedCluster, collector: Collector, undo: UndoLog) -> None:
    cluster = nodes_cluster
    cluster.submit_job(JobSpec(name="work", command=SLEEPER, backoff_limit=3), sink=collector)
    first = _running_pod(cluster, "work")
    node = next(p.node for p in cluster.list_pods() if p.name == first)
    faults = _recorder(cluster, collector, undo)
    active = faults.inject(SPOT_PREEMPTION, SpotPreemptionParams(labels={"job-name": "work"}, notice_seconds=2))
    assert active.target.name == node and active.target.excludes == (f"node:{node}",)
    (injected,) = collector.of(FaultInjected)
    assert isinstance(injected, FaultInjected) and injected.grace_period_seconds == 2 and injected.pod == first
    assert not _agent_running(embedded, node), "the node disappeared when the window ended"
    assert SPOT_TAINT in _taints(embedded.kubeconfig, node)
    assert not next(n for n in cluster.nodes() if n.name == node).schedulable
    kinds = sorted(r.kind for r in undo.pending())
    assert "k8s-taint" in kinds and "k8s-cordon" in kinds  # recorded before acting
    second = _running_pod(cluster, "work", other_than=first)
    assert next(p.node for p in cluster.list_pods() if p.name == second) != node  # resumed elsewhere

    assert faults.heal() == [active.fault_id]
    assert faults.heal() == []  # healing twice is harmless
    (healed,) = collector.of(FaultHealed)
    assert isinstance(healed, FaultHealed) and f"restarted {node}" in healed.detail
    assert _agent_running(embedded, node)
    assert SPOT_TAINT not in _taints(embedded.kubeconfig, node)
    assert all(n.schedulable and n.ready for n in cluster.nodes())
    assert not [r for r in undo.pending() if r.kind in ("k8s-taint", "k8s-cordon")]
    cluster.delete_job("work")


def test_spot_taint_and_cordon_are_undone_from_the_undo_log_after_a_killed_harness(
        nodes_cluster: KubernetesCluster, embedded: EmbeddedCluster, collector: Collector, undo: UndoLog,
        tmp_path: Path) -> None:
    cluster = nodes_cluster
    cluster.submit_job(JobSpec(name="work", command=SLEEPER, backoff_limit=3), sink=collector)
    _running_pod(cluster, "work")
    faults = _recorder(cluster, collector, undo)
    params = SpotPreemptionParams(labels={"job-name": "work"}, notice_seconds=0)
    node = faults.inject(SPOT_PREEMPTION, params).target.name
    # The harness is SIGKILLed here: only its undo records are left (the namespace's stays with the fixture).
    left = UndoLog(tmp_path / "left")
    left.directory.mkdir(parents=True, exist_ok=True)
    for record in undo.pending():
        if record.kind in ("k8s-taint", "k8s-cordon"):
            shutil.move(str(undo.directory / f"{record.id}.json"), str(left.directory / f"{record.id}.json"))
    lines = heal(left)
    assert f"removed taint {SPOT_TAINT} from node {node}" in lines and f"uncordoned node {node}" in lines
    assert heal(left) == [] and left.pending() == []
    assert SPOT_TAINT not in _taints(embedded.kubeconfig, node)
    assert next(n for n in cluster.nodes() if n.name == node).schedulable
    embedded.start_agent(node)  # the agent is the embedded cluster's: `mlchaos heal` removes that cluster whole
    faults.heal()
    cluster.delete_job("work")


def test_environment_drift_gives_the_next_attempt_another_image_env_and_heal_restores_it(
        nodes_cluster: KubernetesCluster, collector: Collector) -> None:
    cluster = nodes_cluster
    cluster.submit_job(JobSpec(name="work", command=REPORTER, backoff_limit=3), sink=collector)
    first = _running_pod(cluster, "work")
    collector.wait_for(lambda e: isinstance(e, EnvironmentReported) and e.pod == first, timeout=60)
    faults = _recorder(cluster, collector)
    params = EnvironmentDriftParams(labels={"job-name": "work"}, image_digest="sha256:drifted", grace_period_seconds=1)
    active = faults.inject(ENVIRONMENT_DRIFT, params)
    second = _running_pod(cluster, "work", other_than=first)
    reported = collector.wait_for(lambda e: isinstance(e, EnvironmentReported) and e.pod == second, timeout=60)
    assert isinstance(reported, EnvironmentReported)
    assert reported.fingerprint == "sha256:drifted" and reported.details == {"precision": "medium"}
    (before,) = [e for e in collector.of(EnvironmentReported) if e.pod == first]
    assert isinstance(before, EnvironmentReported) and before.fingerprint == "none"
    assert faults.heal() == [active.fault_id]
    assert faults.heal() == []
    (healed,) = collector.of(FaultHealed)
    assert isinstance(healed, FaultHealed) and "restored the image env of node-a, node-b" in healed.detail
    cluster.delete_job("work")
    cluster.submit_job(JobSpec(name="after", command=REPORTER, backoff_limit=0), sink=collector)
    third = _running_pod(cluster, "after")
    again = collector.wait_for(lambda e: isinstance(e, EnvironmentReported) and e.pod == third, timeout=60)
    assert isinstance(again, EnvironmentReported) and again.fingerprint == "none"
    cluster.delete_job("after")


def test_without_node_processes_drift_is_one_clear_error_and_nothing_stays_active(
        cluster: KubernetesCluster, collector: Collector) -> None:
    cluster.submit_job(JobSpec(name="work", command=SLEEPER, backoff_limit=1), sink=collector)
    pod = _running_pod(cluster, "work")
    faults = _recorder(cluster, collector)
    with pytest.raises(NodeControlUnsupported, match="the harness does not run its nodes"):
        faults.inject(ENVIRONMENT_DRIFT, EnvironmentDriftParams(labels={"job-name": "work"}))
    assert faults.active() == []
    assert pod in [p.name for p in cluster.list_pods() if p.phase == "Running"]  # nothing was touched
    with pytest.raises(NodeControlUnsupported):
        cluster.stop_node("node-a")
    cluster.delete_job("work")
