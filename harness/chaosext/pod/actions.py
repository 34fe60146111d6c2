"""Chaos Toolkit actions on pods, dispatched to the active cluster backend."""

from __future__ import annotations

from harness import runtime
from harness.faults import pod_delete

__all__ = ["terminate_pods"]


def terminate_pods(label_selector: str = "step=train", grace_period_seconds: float = 30.0) -> list[str]:
    """Delete the running pods of the experiment's main run that match ``label_selector``.

    ``label_selector`` is ``key=value[,key=value]``, as for kubectl. The pods get
    SIGTERM, then SIGKILL after ``grace_period_seconds``; ``0`` kills at once.
    Returns ``"<pod>:<exit code>"`` for each deleted pod.
    """
    if grace_period_seconds < 0:
        raise ValueError(f"grace_period_seconds must be >= 0, got {grace_period_seconds}")
    labels = parse_selector(label_selector)
    exp = runtime.current()
    labels["run"] = exp.main_run().run_id
    ended = pod_delete.delete_running_pods(
        cluster=exp.env.cluster,
        sink=exp.history.append,
        labels=labels,
        grace_period_seconds=grace_period_seconds,
        fault_id=exp.next_fault_id(pod_delete.NAME),
    )
    return [f"{p.name}:{p.exit_code}" for p in ended]


def parse_selector(selector: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in selector.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise ValueError(f"label_selector must be key=value[,key=value], got {selector!r}")
        labels[key.strip()] = value.strip()
    return labels
