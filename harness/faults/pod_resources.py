"""Resource faults on a running pod through the node's fault-control channel (annotations).

Shared by ``oom-kill`` and ``straggler``: set a fault annotation on a pod, wait until its node
answers that it acted (``mlchaos.io/fault-status``), and take it back. The Kubernetes backend
writes an undo record for each annotation before it is set, so ``mlchaos heal`` removes one a
killed harness left behind. Only the embedded cluster's process nodes act on these annotations.
"""

from __future__ import annotations

import time

from harness.cluster.base import Cluster, PodInfo
from harness.cluster.fault_control import FAULT_STATUS_ANNOTATION
from harness.errors import HarnessError

__all__ = ["require_process_nodes", "set_and_confirm", "take_back", "wait_ended", "ACK_TIMEOUT_SECONDS"]

ACK_TIMEOUT_SECONDS = 15.0
_POLL_SECONDS = 0.1


def require_process_nodes(cluster: Cluster, *, fault: str, elsewhere: str) -> str:
    """"" on the embedded cluster; else the refusal, saying what ``elsewhere`` does instead."""
    if cluster.kind == "embedded":
        return ""
    return (f"{fault} acts through the embedded cluster's node agent (pod annotations it turns into cgroup "
            f"limits); this is a {cluster.kind} cluster, whose kubelets ignore them: {elsewhere}")


def set_and_confirm(cluster: Cluster, pod: str, key: str, value: str, *, timeout: float = ACK_TIMEOUT_SECONDS) -> str:
    """Set annotation ``key`` to ``value`` on ``pod`` and return the node's answer once it applied it.
    HarnessError (after taking the annotation back) when the node refused or did not answer."""
    cluster.annotate_pod(pod, {key: value})
    prefix = f"{key}={value}: "
    deadline = time.monotonic() + timeout
    answer = ""
    while time.monotonic() < deadline:
        status = cluster.annotate_pod(pod, {}).get(FAULT_STATUS_ANNOTATION, "")
        answer = next((part[len(prefix):] for part in status.split("; ") if part.startswith(prefix)), "")
        if answer:
            break
        time.sleep(_POLL_SECONDS)
    if not answer.startswith("applied"):
        take_back(cluster, pod, key)
        why = answer or f"no answer from its node within {timeout:g} s (is it a process node?)"
        raise HarnessError(f"pod {pod}: {key}={value} did not take effect: {why}")
    return answer


def take_back(cluster: Cluster, pod: str, key: str) -> str:
    """Remove annotation ``key`` from ``pod`` (the node restores the pod's own limit); harmless twice."""
    try:
        cluster.annotate_pod(pod, {key: None})
    except HarnessError:
        return f"pod {pod} is gone"
    return f"removed {key} from pod {pod}"


def wait_ended(cluster: Cluster, pod: PodInfo, *, timeout: float) -> PodInfo | None:
    """``pod`` once its container has ended (exit code known), or None after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = next((p for p in cluster.list_pods(labels={"job-name": pod.job}) if p.name == pod.name), None)
        if now is None or now.gone:
            return now
        if now.exit_code is not None and (now.phase != "Running" or now.restart_count > pod.restart_count):
            return now  # ended for good, or restarted in place (restartPolicy OnFailure)
        time.sleep(_POLL_SECONDS * 2)
    return None
