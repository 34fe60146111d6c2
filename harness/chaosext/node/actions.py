"""Chaos Toolkit actions on nodes, dispatched to the active cluster backend."""

from __future__ import annotations

from harness import runtime
from harness.chaosext.pod.actions import parse_selector
from harness.faults import node_drain

__all__ = ["drain_node"]


def drain_node(label_selector: str = "step=train", grace_period_seconds: float = 30.0) -> str:
    """Drain the node that runs the main run's pod matching ``label_selector``: cordon it,
    then evict its pods with ``grace_period_seconds``. Returns the node's name.

    The node stays cordoned until healed (``harness.chaosext.faults.actions.heal_faults``)
    or the experiment ends.
    """
    if grace_period_seconds < 0:
        raise ValueError(f"grace_period_seconds must be >= 0, got {grace_period_seconds}")
    exp = runtime.current()
    labels = {**parse_selector(label_selector), "run": exp.main_run().run_id}
    fault_id = exp.next_fault_id(node_drain.NAME)
    node, heal = node_drain.drain_node_of(
        cluster=exp.env.cluster, sink=exp.history.append, labels=labels,
        grace_period_seconds=grace_period_seconds, fault_id=fault_id,
    )
    exp.on_heal(fault_id, heal)
    return node
