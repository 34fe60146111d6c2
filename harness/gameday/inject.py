"""Turn a scheduled fault into the Fault role's injection, through the run's fault recorder.

Each kind maps to the fault the experiments use, so a game day's faults are
recorded, excluded, undone and healed exactly as an experiment's are.
"""

from __future__ import annotations

from harness.faults.backfill_storm import BACKFILL_STORM, BackfillStormParams
from harness.faults.checkpoint_corruption import CHECKPOINT_CORRUPTION, CheckpointCorruptionParams
from harness.faults.node_drain import NODE_DRAIN, NodeDrainParams
from harness.faults.pod_delete import PodDeleteParams, delete_running_pods
from harness.faults.proxy_faults import NETWORK_DELAY, STORAGE_THROTTLE, NetworkDelayParams, StorageThrottleParams
from harness.faults.recorder import FaultRecorder
from harness.faults.registry_race import REGISTRY_RACE, RegistryRaceParams
from harness.faults.spot_preemption import SPOT_PREEMPTION, SpotPreemptionParams
from harness.gameday.model import ScheduledFault
from harness.workload.backfill import dates_before

__all__ = ["inject"]


def inject(faults: FaultRecorder, fault: ScheduledFault, *, date: str) -> tuple[tuple[str, ...], str]:
    """Inject ``fault`` into the run of ``date``; returns the recorder's fault ids (to heal later; empty
    for a pod delete, which is over once its pod has terminated) and what it did. Raises HarnessError
    when it cannot act (no pod of its step is running, an exclusion group is held, no checkpoint to corrupt
    yet), ValueError for parameters its fault refuses (a negative notice, no racer)."""
    step = {"step": fault.at.step}
    if fault.kind == "pod-delete":
        grace = float(fault.param("grace_period_seconds", 30.0))
        ended = delete_running_pods(faults, PodDeleteParams(labels=step, grace_period_seconds=grace))
        return (), "; ".join(ended)
    if fault.kind == "node-drain":
        grace = float(fault.param("grace_period_seconds", 30.0))
        active = faults.inject(NODE_DRAIN, NodeDrainParams(labels=step, grace_period_seconds=grace))
    elif fault.kind == "network-delay":
        active = faults.inject(NETWORK_DELAY, NetworkDelayParams(
            latency_ms=float(fault.param("latency_ms", 200.0)), jitter_ms=float(fault.param("jitter_ms", 50.0))))
    elif fault.kind == "storage-throttle":
        active = faults.inject(STORAGE_THROTTLE, StorageThrottleParams(
            bandwidth_bytes_per_s=float(fault.param("bandwidth_bytes_per_s", 1048576.0)),
            slowdown_share=float(fault.param("slowdown_share", 0.2))))
    elif fault.kind == "backfill-storm":
        days = int(fault.param("days", 3))
        active = faults.inject(BACKFILL_STORM, BackfillStormParams(
            name=f"storm-{fault.fault_id}", dates=tuple(dates_before(date, days)),
            concurrency=int(fault.param("concurrency", 1)), train_steps=int(fault.param("train_steps", 30))))
    elif fault.kind == "spot-preemption":
        # Blocks for the notice window (the fault's own contract), as an experiment's action does.
        active = faults.inject(SPOT_PREEMPTION, SpotPreemptionParams(
            labels=step, notice_seconds=float(fault.param("notice_seconds", 30.0))))
    elif fault.kind == "checkpoint-corruption":
        # Always the training pod (the entry may name no other step): the kill makes it restore the damage.
        active = faults.inject(CHECKPOINT_CORRUPTION, CheckpointCorruptionParams(
            mode=str(fault.param("mode", "flip")),
            grace_period_seconds=float(fault.param("grace_period_seconds", 0.0))))
    elif fault.kind == "registry-race":
        racers = int(fault.param("racers", 3))
        active = faults.inject(REGISTRY_RACE, RegistryRaceParams(
            name=f"race-{fault.fault_id}", dates=tuple(dates_before(date, racers)),
            train_steps=int(fault.param("train_steps", 10))))
    else:
        raise ValueError(f"unknown fault kind {fault.kind!r}")
    return (active.fault_id,), active.target.detail
