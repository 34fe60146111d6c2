"""Chaos Toolkit actions on nodes: wrappers over :mod:`harness.faults.node_drain`."""

from __future__ import annotations

from harness import runtime
from harness.chaosext.pod.actions import parse_selector
from harness.faults.environment_drift import ENVIRONMENT_DRIFT, EnvironmentDriftParams
from harness.faults.node_drain import NODE_DRAIN, NodeDrainParams
from harness.faults.spot_preemption import SPOT_PREEMPTION, SpotPreemptionParams

__all__ = ["drain_node", "drift_environment", "preempt_spot_node"]


def drain_node(label_selector: str = "", grace_period_seconds: float = 30.0) -> str:
    """Drain the node that runs the main run's pod matching ``label_selector`` ("" picks the
    workload's training step): cordon it, then evict its pods with ``grace_period_seconds``.
    Returns the node's name.

    The node stays cordoned until healed (``harness.chaosext.faults.actions.heal_faults``)
    or the experiment ends.
    """
    params = NodeDrainParams(labels=parse_selector(label_selector), grace_period_seconds=grace_period_seconds)
    return runtime.current().faults.inject(NODE_DRAIN, params).target.name


def preempt_spot_node(label_selector: str = "", notice_seconds: float | None = None, provider: str = "") -> str:
    """Deliver a spot termination notice to the node of the main run's pod matching ``label_selector`` ("": the
    training step's): taint and cordon it, evict its pods with the notice window as grace, and when the window
    (``notice_seconds``, else ``provider``'s: aws 120, gcp 30, gke-spot 15; else 30) ends, stop the node.
    Blocks until the window has ended; returns the node's name. Healed by ``heal_faults`` or the experiment's end.
    """
    params = SpotPreemptionParams(labels=parse_selector(label_selector), notice_seconds=notice_seconds,
                                  provider=provider)
    return runtime.current().faults.inject(SPOT_PREEMPTION, params).target.name


def drift_environment(label_selector: str = "", image_digest: str = "", matmul_precision: str = "medium",
                      grace_period_seconds: float = 30.0) -> str:
    """Re-image every node (another ``IMAGE_DIGEST``, ``TORCH_MATMUL_PRECISION=matmul_precision``), then delete the
    main run's pod matching ``label_selector`` ("": the training step's) so its next attempt runs under the drifted
    environment. Returns the deleted pod's name. Healed by ``heal_faults`` or the experiment's end."""
    defaults = EnvironmentDriftParams()
    params = EnvironmentDriftParams(labels=parse_selector(label_selector),
                                    image_digest=image_digest or defaults.image_digest,
                                    matmul_precision=matmul_precision, grace_period_seconds=grace_period_seconds)
    return runtime.current().faults.inject(ENVIRONMENT_DRIFT, params).target.name
