"""Straggler on the embedded Kubernetes cluster, through the recorder: the node gives the pod a CFS quota for the
window, heal takes it back (twice harmlessly), and after a simulated killed harness the undo log removes the
annotation. Serialize runs of this file with the other cluster tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.cluster.base import JobSpec
from harness.cluster.fault_control import CPU_LIMIT_ANNOTATION, FAULT_STATUS_ANNOTATION
from harness.cluster.kube.backend import KubernetesCluster
from harness.errors import HarnessError
from harness.faults.recorder import FaultRecorder
from harness.faults.role import FaultContext
from harness.faults.straggler import STRAGGLER, StragglerParams
from harness.history.events import FaultHealed, FaultInjected
from harness.undo import UndoLog, heal
from tests.cluster.conftest import Collector, py, wait_until

SLEEPER = py("import time\nwhile True: time.sleep(0.05)")


def _recorder(cluster: KubernetesCluster, collector: Collector, undo: UndoLog) -> FaultRecorder:
    return FaultRecorder(sink=collector, experiment="straggler",
                         context=FaultContext(cluster=cluster, seed=7, undo=undo))


def _running_pod(cluster: KubernetesCluster, job: str) -> str:
    found: list[str] = []

    def running() -> bool:
        found[:] = [p.name for p in cluster.list_pods(labels={"job-name": job}) if p.phase == "Running"]
        return bool(found)

    wait_until(running, timeout=90, what=f"a running pod of {job}")
    return found[0]


def _annotations(cluster: KubernetesCluster, pod: str) -> dict[str, str]:
    try:
        return cluster.annotate_pod(pod, {})
    except HarnessError:
        return {}  # the pod is gone: nothing of the fault is left on it


def test_bad_params_are_one_line_errors() -> None:
    with pytest.raises(HarnessError):
        StragglerParams(cpu_limit="slow")
    with pytest.raises(ValueError, match="above 0 cores"):
        StragglerParams(cpu_limit="0")
    with pytest.raises(ValueError, match="duration_seconds must be > 0"):
        StragglerParams(duration_seconds=0)


def test_the_pod_is_throttled_for_the_window_and_heal_gives_its_cpu_back_once(
        cluster: KubernetesCluster, collector: Collector, tmp_path: Path) -> None:
    cluster.submit_job(JobSpec(name="slow", command=SLEEPER, backoff_limit=0), sink=collector)
    pod = _running_pod(cluster, "slow")
    node = next(p.node for p in cluster.list_pods(labels={"job-name": "slow"}) if p.name == pod)
    undo = UndoLog(tmp_path / "fault-undo")
    faults = _recorder(cluster, collector, undo)
    active = faults.inject(STRAGGLER, StragglerParams(labels={"job-name": "slow"}, cpu_limit="100m",
                                                      duration_seconds=1))
    injected = [e for e in collector.events if isinstance(e, FaultInjected) and e.fault_id == active.fault_id]
    assert len(injected) == 1 and f"slow pod {pod} on node {node}" in injected[0].detail, injected
    assert faults.heal() == [active.fault_id]
    healed = [e for e in collector.events if isinstance(e, FaultHealed) and e.fault_id == active.fault_id]
    assert len(healed) == 1, healed
    assert "node answered: applied: CPU quota set to 10000 us per 100000 us" in healed[0].detail, healed[0].detail
    assert CPU_LIMIT_ANNOTATION not in _annotations(cluster, pod)
    wait_until(lambda: "(removed): applied: CPU quota removed" in
               _annotations(cluster, pod).get(FAULT_STATUS_ANNOTATION, ""), timeout=30,
               what="the node to take the quota back")
    assert faults.heal() == []  # healing twice is harmless
    active.heal()  # and the heal itself, run again, only finds the annotation gone
    assert undo.pending() == []
    cluster.delete_job("slow")


def test_the_undo_log_gives_the_cpu_back_after_a_killed_harness(
        cluster: KubernetesCluster, collector: Collector, undo: UndoLog, tmp_path: Path) -> None:
    cluster.submit_job(JobSpec(name="slow2", command=SLEEPER, backoff_limit=0), sink=collector)
    pod = _running_pod(cluster, "slow2")
    cluster.annotate_pod(pod, {CPU_LIMIT_ANNOTATION: "100m"})  # what the fault sets first
    wait_until(lambda: "applied: CPU quota set" in _annotations(cluster, pod).get(FAULT_STATUS_ANNOTATION, ""),
               timeout=30, what="the node to apply the quota")
    # The harness is SIGKILLed here: only its undo records are left (the namespace's stays with the fixture).
    left = UndoLog(tmp_path / "left")
    left.directory.mkdir(parents=True, exist_ok=True)
    for record in undo.pending():
        if record.kind == "k8s-pod-annotation":
            shutil.move(str(undo.directory / f"{record.id}.json"), str(left.directory / f"{record.id}.json"))
    lines = heal(left)
    assert lines == [f"removed annotation {CPU_LIMIT_ANNOTATION} of pod {cluster.namespace}/{pod}"], lines
    assert heal(left) == [] and left.pending() == []  # twice is harmless
    wait_until(lambda: "(removed): applied: CPU quota removed" in
               _annotations(cluster, pod).get(FAULT_STATUS_ANNOTATION, ""), timeout=30,
               what="the node to take the quota back")
    cluster.delete_job("slow2")
