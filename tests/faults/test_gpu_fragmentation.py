"""GPU fragmentation on the embedded cluster (8 advertised GPUs per node), through the recorder: the
cluster is fragmented, the sampler records it, a daily-priority pod preempts fillers, and heal (also
twice, also through the undo log after a killed harness) deletes every filler."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client

import harness.cluster.kube.undo_kinds  # noqa: F401  teaches heal the k8s-jobs records
from harness import undo as undo_module
from harness.cluster.base import PRIORITY_DAILY, JobSpec
from harness.cluster.kube.backend import KubernetesCluster
from harness.errors import HarnessError
from harness.faults.gpu_fragmentation import FILLER_LABEL, GPU_FRAGMENTATION, GpuFragmentationParams
from harness.faults.recorder import FaultRecorder
from harness.faults.role import FaultContext
from harness.history.events import GpuCapacitySampled, GpuPodScheduled
from harness.services.gpu_sampler import read_gpu_state
from harness.undo import UndoLog
from tests.cluster.conftest import Collector, py, wait_until

SLEEPER = py("import time\nwhile True: time.sleep(0.05)")
PARAMS = GpuFragmentationParams(gpus=6, max_pods_per_node=2, sample_interval_seconds=0.5)


def _recorder(cluster: KubernetesCluster, collector: Collector, undo: UndoLog) -> FaultRecorder:
    return FaultRecorder(sink=collector, experiment="gpu", context=FaultContext(cluster=cluster, seed=7, undo=undo))


def _fillers(cluster: KubernetesCluster) -> list[str]:
    return [p.name for p in cluster.list_pods() if FILLER_LABEL in p.labels and not p.gone]


def _idle(cluster: KubernetesCluster) -> dict[str, int]:
    return read_gpu_state(client.CoreV1Api(cluster.api_client)).idle()


def test_fragmented_then_preempted_then_healed_once(cluster: KubernetesCluster, collector: Collector,
                                                    tmp_path: Path) -> None:
    undo = UndoLog(tmp_path / "fault-undo")
    recorder = _recorder(cluster, collector, undo)
    active = recorder.inject(GPU_FRAGMENTATION, PARAMS)
    try:
        idle = _idle(cluster)
        assert sum(idle.values()) >= 6 and max(idle.values()) < 6, idle
        assert [r.kind for r in undo.pending()] == ["k8s-jobs"]
        collector.wait_for(lambda e: isinstance(e, GpuCapacitySampled) and e.idle_total >= 6)

        cluster.submit_job(JobSpec(name="daily", command=SLEEPER, gpus=6, priority_class=PRIORITY_DAILY),
                           sink=collector)
        scheduled = collector.wait_for(lambda e: isinstance(e, GpuPodScheduled) and e.job == "daily", timeout=60)
        assert isinstance(scheduled, GpuPodScheduled) and scheduled.gpus == 6
        # Whether a sample catches the pod pending depends on how fast the scheduler preempts; stranded capacity
        # is shown where the pod stays pending (tests/test_gpu_fragmentation_end_to_end.py, and the unit tests).
        wait_until(lambda: any(isinstance(e, GpuCapacitySampled) and e.preemptions >= 1 for e in collector.events),
                   timeout=30, what="a preemption recorded by the sampler")
    finally:
        healed = recorder.heal()  # also when an assertion failed: the next test needs the GPUs back
    assert healed == [active.fault_id]
    assert _fillers(cluster) == []
    assert undo.pending() == []
    assert recorder.heal() == []  # healing twice is harmless
    assert active.heal() == "already healed"
    cluster.delete_job("daily")


def test_the_undo_log_deletes_the_fillers_after_a_killed_harness(cluster: KubernetesCluster, collector: Collector,
                                                                 tmp_path: Path) -> None:
    undo = UndoLog(tmp_path / "fault-undo")
    recorder = _recorder(cluster, collector, undo)
    active = recorder.inject(GPU_FRAGMENTATION, PARAMS)
    assert _fillers(cluster)
    # The harness is SIGKILLed here: only its undo records remain; `mlchaos heal` runs them.
    lines = undo_module.heal(undo)
    assert len(lines) == 1 and "deleted jobs" in lines[0], lines
    wait_until(lambda: not _fillers(cluster), timeout=60, what="the filler pods to go")
    assert undo_module.heal(undo) == []  # twice is harmless
    assert recorder.heal() == [active.fault_id]  # the recorder's own heal after the undo finds nothing left


def test_a_cluster_that_cannot_be_fragmented_is_refused_before_anything_acts(
        cluster: KubernetesCluster, collector: Collector, tmp_path: Path) -> None:
    undo = UndoLog(tmp_path / "fault-undo")
    with pytest.raises(HarnessError, match="no node has 9 GPUs"):
        _recorder(cluster, collector, undo).inject(GPU_FRAGMENTATION, GpuFragmentationParams(gpus=9))
    assert _fillers(cluster) == [] and undo.pending() == []
