"""OOM kill on the embedded Kubernetes cluster, through the recorder: the kernel OOM-kills the pod (reported
``OOMKilled``, exit 137), heal takes the memory limit back (twice harmlessly), and after a simulated killed
harness the undo log removes the annotation. Serialize runs of this file with the other cluster tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.cluster.base import JobSpec
from harness.cluster.fault_control import FAULT_STATUS_ANNOTATION, MEMORY_LIMIT_ANNOTATION
from harness.cluster.kube.backend import KubernetesCluster
from harness.errors import HarnessError
from harness.faults.oom_kill import OOM_KILL, OomKillParams
from harness.faults.recorder import FaultRecorder
from harness.faults.role import FaultContext
from harness.history.events import FaultHealed, PodExited
from harness.undo import UndoLog, heal
from tests.cluster.conftest import Collector, py, wait_until

# Holds 32 MiB (below the 64Mi cap, so the cap is accepted as is), then sleeps: its memory stays flat, so only
# the fault's growth past the cap can end it.
HOG = py("import time\nheld = bytearray(32 << 20)\nwhile True: time.sleep(0.05)")


def _recorder(cluster: KubernetesCluster, collector: Collector, undo: UndoLog) -> FaultRecorder:
    return FaultRecorder(sink=collector, experiment="oom", context=FaultContext(cluster=cluster, seed=7, undo=undo))


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
        OomKillParams(memory_limit="lots")
    with pytest.raises(ValueError, match="repeat must be >= 1"):
        OomKillParams(repeat=0)


def test_the_kernel_oom_kills_the_pod_and_heal_takes_the_limit_back_once(
        cluster: KubernetesCluster, collector: Collector, tmp_path: Path) -> None:
    cluster.submit_job(JobSpec(name="hog", command=HOG, backoff_limit=3), sink=collector)
    pod = _running_pod(cluster, "hog")
    undo = UndoLog(tmp_path / "fault-undo")
    faults = _recorder(cluster, collector, undo)
    active = faults.inject(OOM_KILL, OomKillParams(labels={"job-name": "hog"}, memory_limit="64Mi"))
    assert active.target.name == pod and "memory limit 64Mi" in active.target.detail
    exited = collector.wait_for(lambda e: isinstance(e, PodExited) and e.pod == pod, timeout=30)
    assert isinstance(exited, PodExited) and (exited.exit_code, exited.reason) == (137, "OOMKilled")
    assert faults.heal() == [active.fault_id]
    healed = [e for e in collector.events if isinstance(e, FaultHealed) and e.fault_id == active.fault_id]
    assert len(healed) == 1 and "exit code 137 (OOMKilled)" in healed[0].detail, healed
    assert MEMORY_LIMIT_ANNOTATION not in _annotations(cluster, pod)
    assert faults.heal() == []  # healing twice is harmless
    active.heal()  # and the heal itself, run again, only finds the annotation gone
    assert undo.pending() == []
    # The Job retries it in a new pod, which runs unharmed (no limit of the fault follows it).
    wait_until(lambda: any(p.phase == "Running" and p.name != pod
                           for p in cluster.list_pods(labels={"job-name": "hog"})),
               timeout=60, what="the retry of the OOM-killed pod")
    cluster.delete_job("hog")


def test_the_undo_log_takes_the_limit_back_after_a_killed_harness(
        cluster: KubernetesCluster, collector: Collector, undo: UndoLog, tmp_path: Path) -> None:
    cluster.submit_job(JobSpec(name="hog2", command=HOG, backoff_limit=0), sink=collector)
    pod = _running_pod(cluster, "hog2")
    cluster.annotate_pod(pod, {MEMORY_LIMIT_ANNOTATION: "1Gi"})  # what the fault sets first (1Gi: nothing dies)
    wait_until(lambda: "applied" in _annotations(cluster, pod).get(FAULT_STATUS_ANNOTATION, ""), timeout=30,
               what="the node to apply the limit")
    # The harness is SIGKILLed here: only its undo records are left (the namespace's stays with the fixture).
    left = UndoLog(tmp_path / "left")
    left.directory.mkdir(parents=True, exist_ok=True)
    for record in undo.pending():
        if record.kind == "k8s-pod-annotation":
            shutil.move(str(undo.directory / f"{record.id}.json"), str(left.directory / f"{record.id}.json"))
    lines = heal(left)
    assert lines == [f"removed annotation {MEMORY_LIMIT_ANNOTATION} of pod {cluster.namespace}/{pod}"], lines
    assert heal(left) == [] and left.pending() == []  # twice is harmless
    assert MEMORY_LIMIT_ANNOTATION not in _annotations(cluster, pod)
    wait_until(lambda: "(removed): applied: memory limit restored" in
               _annotations(cluster, pod).get(FAULT_STATUS_ANNOTATION, ""), timeout=30,
               what="the node to restore the pod's own limit")
    cluster.delete_job("hog2")
