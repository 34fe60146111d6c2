"""Chaos Toolkit actions on nodes: wrappers over :mod:`harness.faults.node_drain`."""

from __future__ import annotations

from harness import runtime
from harness.chaosext.pod.actions import parse_selector
from harness.faults.node_drain import NODE_DRAIN, NodeDrainParams

__all__ = ["drain_node"]


def drain_node(label_selector: str = "", grace_period_seconds: float = 30.0) -> str:
    """Drain the node that runs the main run's pod matching ``label_selector`` ("" picks the
    workload's training step): cordon it, then evict its pods with ``grace_period_seconds``.
    Returns the node's name.

    The node stays cordoned until healed (``harness.chaosext.faults.actions.heal_faults``)
    or the experiment ends.
    """
    params = NodeDrainParams(labels=parse_selector(label_selector), grace_period_seconds=grace_period_seconds)
    return runtime.current().faults.inject(NODE_DRAIN, params).target.name
