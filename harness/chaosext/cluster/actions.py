"""Chaos Toolkit actions on the cluster's capacity: wrappers over :mod:`harness.faults.gpu_fragmentation`."""

from __future__ import annotations

from harness import runtime
from harness.faults.gpu_fragmentation import GPU_FRAGMENTATION, GpuFragmentationParams

__all__ = ["fragment_gpus"]


def fragment_gpus(gpus: int, max_pods_per_node: int = 1, priority_class: str = "", sleep_seconds: int = 3600,
                  sample_interval_seconds: float = 1.0) -> str:
    """Fill the nodes with sleeping filler Jobs of mixed GPU shapes so that at least ``gpus`` GPUs stay
    idle cluster-wide but no node has ``gpus`` idle, and sample the GPU scheduling state into the
    history until healed (``harness.chaosext.faults.actions.heal_faults``, or the experiment's end).
    ``priority_class`` is the fillers' (logical names ``mlchaos-daily``/``mlchaos-backfill`` map to the
    cluster's). Returns what the fault planned."""
    params = GpuFragmentationParams(gpus=gpus, max_pods_per_node=max_pods_per_node, priority_class=priority_class,
                                    sleep_seconds=sleep_seconds, sample_interval_seconds=sample_interval_seconds)
    return runtime.current().faults.inject(GPU_FRAGMENTATION, params).target.detail
