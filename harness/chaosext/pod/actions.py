"""Chaos Toolkit actions on pods: wrappers over :mod:`harness.faults.pod_delete`."""

from __future__ import annotations

from harness import runtime
from harness.faults.pod_delete import PodDeleteParams, delete_running_pods

__all__ = ["terminate_pods"]


def terminate_pods(label_selector: str = "", grace_period_seconds: float = 30.0) -> list[str]:
    """Delete the running pods of the experiment's main run that match ``label_selector``
    (``key=value[,key=value]`` as for kubectl; "" picks the pods of the workload's training step).

    The pods get SIGTERM, then SIGKILL after ``grace_period_seconds``; ``0`` kills at once.
    Each pod is one fault. Returns how each deleted pod ended.
    """
    params = PodDeleteParams(labels=parse_selector(label_selector), grace_period_seconds=grace_period_seconds)
    return delete_running_pods(runtime.current().faults, params)


def parse_selector(selector: str) -> dict[str, str]:
    """``key=value[,key=value]`` as a mapping; ValueError names a malformed selector."""
    labels: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in selector.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise ValueError(f"label_selector must be key=value[,key=value], got {selector!r}")
        labels[key.strip()] = value.strip()
    return labels
