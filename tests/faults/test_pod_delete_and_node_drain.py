"""Pod delete and node drain on the embedded Kubernetes cluster, through the recorder: what they record,
and that they heal completely."""

from __future__ import annotations

import pytest

from harness.cluster.base import JobSpec
from harness.cluster.kube.backend import KubernetesCluster
from harness.errors import HarnessError
from harness.faults.node_drain import NODE_DRAIN, NodeDrainParams
from harness.faults.pod_delete import PodDeleteParams, delete_running_pods
from harness.faults.recorder import FaultRecorder
from harness.faults.role import FaultContext
from harness.history.events import FaultHealed, FaultInjected
from tests.cluster.conftest import Collector, py, wait_until

SLEEPER = py("import time\nwhile True: time.sleep(0.05)")


def _recorder(cluster: KubernetesCluster, collector: Collector) -> FaultRecorder:
    return FaultRecorder(sink=collector, experiment="faults", context=FaultContext(cluster=cluster, seed=7))


def _running_pod(cluster: KubernetesCluster, job: str, *, other_than: str = "") -> str:
    found: list[str] = []

    def running() -> bool:
        found[:] = [p.name for p in cluster.list_pods(labels={"job-name": job})
                    if p.phase == "Running" and not p.deleting and p.name != other_than]
        return bool(found)

    wait_until(running, timeout=60, what=f"a running pod of {job}")
    return found[0]


def test_drain_cordons_evicts_and_heal_uncordons_once(cluster: KubernetesCluster, collector: Collector) -> None:
    cluster.submit_job(JobSpec(name="work", command=SLEEPER, backoff_limit=3), sink=collector)
    first = _running_pod(cluster, "work")
    node = next(p.node for p in cluster.list_pods() if p.name == first)
    faults = _recorder(cluster, collector)
    active = faults.inject(NODE_DRAIN, NodeDrainParams(labels={"job-name": "work"}, grace_period_seconds=1))
    assert active.target.name == node and active.target.excludes == (f"node:{node}",)
    assert not next(n for n in cluster.nodes() if n.name == node).schedulable
    second = _running_pod(cluster, "work", other_than=first)
    assert next(p.node for p in cluster.list_pods() if p.name == second) != node  # rescheduled elsewhere
    (injected,) = collector.of(FaultInjected)
    assert isinstance(injected, FaultInjected)
    assert injected.pod == first and injected.target == node and f"evicted {first}" in injected.detail
    assert faults.heal() == [active.fault_id]
    assert faults.heal() == []  # healing twice is harmless
    assert all(n.schedulable for n in cluster.nodes())
    assert len(collector.of(FaultHealed)) == 1
    cluster.delete_job("work")


def test_drain_with_nothing_to_hit_is_an_error_not_a_silent_pass(cluster: KubernetesCluster,
                                                                 collector: Collector) -> None:
    faults = _recorder(cluster, collector)
    with pytest.raises(HarnessError, match="node-drain found no running pod"):
        faults.inject(NODE_DRAIN, NodeDrainParams(labels={"job-name": "none"}, grace_period_seconds=1))
    assert all(n.schedulable for n in cluster.nodes())
    assert collector.events == [] and faults.active() == []


def test_pod_delete_records_the_kill_and_its_end(cluster: KubernetesCluster, collector: Collector) -> None:
    cluster.submit_job(JobSpec(name="work", command=SLEEPER, backoff_limit=1), sink=collector)
    pod = _running_pod(cluster, "work")
    faults = _recorder(cluster, collector)
    (ended,) = delete_running_pods(faults, PodDeleteParams(labels={"job-name": "work"}, grace_period_seconds=0))
    assert ended == f"pod {pod} terminated with exit code 137"
    assert faults.active() == []  # over once the pod has ended
    (injected,) = collector.of(FaultInjected)
    (healed,) = collector.of(FaultHealed)
    assert isinstance(injected, FaultInjected) and isinstance(healed, FaultHealed)
    assert injected.target == pod and "SIGKILL at once" in injected.detail
    assert "exit code 137" in healed.detail and healed.ts >= injected.ts
    cluster.delete_job("work")
