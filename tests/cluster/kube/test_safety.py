"""What the backend refuses or leaves alone on a cluster that is not the harness's own, and what ``heal --context``
finds there by label: checked on the embedded cluster's real API server."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from harness.cluster.base import JobSpec
from harness.cluster.embedded.cluster import EmbeddedCluster
from harness.cluster.kube.backend import KubernetesCluster
from harness.cluster.kube.heartbeat import HEARTBEAT_ANNOTATION
from harness.cluster.kube.manifests import CORDONED_BY_ANNOTATION
from harness.cluster.kube.sweep import sweep
from harness.errors import HarnessError
from harness.undo import UndoLog
from tests.cluster.conftest import Collector, py, wait_until


@pytest.fixture
def core(embedded: EmbeddedCluster) -> Iterator[client.CoreV1Api]:
    api = config.new_client_from_config(config_file=str(embedded.kubeconfig))
    yield client.CoreV1Api(api)
    api.close()


def _backend(embedded: EmbeddedCluster, undo: UndoLog, **options: object) -> KubernetesCluster:
    run = uuid.uuid4().hex[:8]
    return KubernetesCluster(kubeconfig=embedded.kubeconfig, namespace=f"t-{run}", run=run, undo=undo,
                             flavor="existing", **options)  # type: ignore[arg-type]


def test_node_faults_are_refused_unless_allowed(embedded: EmbeddedCluster, undo: UndoLog,
                                                core: client.CoreV1Api) -> None:
    node = embedded.node_names[0]
    with _backend(embedded, undo, allow_node_faults=False) as backend:
        with pytest.raises(HarnessError, match="node faults are not allowed.*--allow-node-faults"):
            backend.cordon(node)
        with pytest.raises(HarnessError, match="node faults are not allowed"):
            backend.drain(node)
    assert not core.read_node(node).spec.unschedulable


def test_node_faults_touch_only_nodes_matching_the_selector(embedded: EmbeddedCluster, undo: UndoLog,
                                                            core: client.CoreV1Api) -> None:
    first, second = embedded.node_names[:2]
    with _backend(embedded, undo, node_selector={"kubernetes.io/hostname": first}) as backend:
        with pytest.raises(HarnessError, match=f"node {second} does not match --node-selector"):
            backend.cordon(second)
        backend.cordon(first)
        assert core.read_node(first).metadata.annotations[CORDONED_BY_ANNOTATION] == backend.namespace
        backend.uncordon(first)
    assert not core.read_node(second).spec.unschedulable
    assert CORDONED_BY_ANNOTATION not in (core.read_node(first).metadata.annotations or {})


def test_a_node_someone_else_cordoned_stays_cordoned(embedded: EmbeddedCluster, undo: UndoLog,
                                                     core: client.CoreV1Api) -> None:
    node = embedded.node_names[0]
    core.patch_node(node, {"spec": {"unschedulable": True}})  # an operator's cordon, before the run
    try:
        with _backend(embedded, undo) as backend:
            backend.cordon(node)
            backend.uncordon(node)
        assert core.read_node(node).spec.unschedulable, "the harness undid a cordon it did not make"
        assert undo.pending() == []
    finally:
        core.patch_node(node, {"spec": {"unschedulable": False}})


def test_missing_priority_classes_are_not_created_without_permission(embedded: EmbeddedCluster, undo: UndoLog,
                                                                     core: client.CoreV1Api) -> None:
    with pytest.raises(HarnessError, match="PriorityClass team-daily does not exist.*--allow-cluster-scoped"):
        with _backend(embedded, undo, allow_cluster_scoped=False,
                      priority_classes={"mlchaos-daily": "team-daily"}):
            pass
    scheduling = client.SchedulingV1Api(core.api_client)
    assert "team-daily" not in [pc.metadata.name for pc in scheduling.list_priority_class().items]
    assert undo.pending() == []


def test_drain_evicts_only_the_runs_own_pods(embedded: EmbeddedCluster, undo: UndoLog, cluster: KubernetesCluster,
                                             collector: Collector, core: client.CoreV1Api) -> None:
    """Another tenant's pod on the drained node keeps running (``cluster`` plays the other tenant)."""
    node = embedded.node_names[0]
    others = [n for n in embedded.node_names if n != node]
    for other in others:
        cluster.cordon(other)  # the tenant's pod lands on ``node``
    sleeper = py("import time\nwhile True: time.sleep(1)")
    cluster.submit_job(JobSpec(name="tenant", command=sleeper), sink=collector)
    wait_until(lambda: any(p.phase == "Running" for p in cluster.list_pods(labels={"job-name": "tenant"})),
               what="the tenant's pod")
    for other in others:
        cluster.uncordon(other)
    with _backend(embedded, undo) as backend:
        assert backend.drain(node, grace_period_seconds=1) == []
        backend.uncordon(node)
    assert [p.phase for p in cluster.list_pods(labels={"job-name": "tenant"})] == ["Running"]
    cluster.delete_job("tenant")


def test_sweep_removes_dead_runs_and_keeps_live_ones(embedded: EmbeddedCluster, tmp_path: Path,
                                                     core: client.CoreV1Api) -> None:
    """A run that stopped beating 90 s ago (killed elsewhere) is removed with its cordon; a live one is kept."""
    dead_undo, live_undo = UndoLog(tmp_path / "dead"), UndoLog(tmp_path / "live")
    node = embedded.node_names[0]
    dead = _backend(embedded, dead_undo, allow_cluster_scoped=True,
                    priority_classes={"mlchaos-daily": f"swept-{uuid.uuid4().hex[:6]}"})
    dead.__enter__()
    dead._heartbeat.stop()  # as a SIGKILL would: no more beats, nothing cleaned up
    dead.cordon(node)
    stale = f"{time.time() - 90:.0f}"
    core.patch_namespace(dead.namespace, {"metadata": {"annotations": {HEARTBEAT_ANNOTATION: stale}}})
    with _backend(embedded, live_undo) as live:
        lines = sweep(core.api_client, stale_seconds=60)
        assert f"deleted namespace {dead.namespace}" in "\n".join(lines)
        assert any(line.startswith(f"kept namespace {live.namespace}") for line in lines)
        assert any(line.startswith("kept PriorityClass swept-") for line in lines), lines
        assert not core.read_node(node).spec.unschedulable
        assert CORDONED_BY_ANNOTATION not in (core.read_node(node).metadata.annotations or {})
    later = sweep(core.api_client, stale_seconds=60)  # no live run is left: the class it created goes too
    assert any(line.startswith("deleted PriorityClass swept-") for line in later), later
    dead._stack.close()  # the test's own bookkeeping; the objects are gone already
