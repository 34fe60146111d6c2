"""The fault-control channel to a node: pod annotations a node agent acts on (the embedded cluster's).

A pod's ``resources`` cannot change once it exists (Kubernetes 1.20), but its
annotations can, and they travel through the real API server to the node the
pod runs on, where the node agent (the embedded cluster's kubelet) watches its
pods. So a fault reaches a *running* pod's resources this way:

- ``mlchaos.io/memory-limit: <quantity>``: the container's memory cgroup is capped
  at the quantity (or at the tightest limit the kernel accepts above what it cannot
  reclaim) and the pod's memory grows past it, so the kernel's OOM killer ends the
  container: it is reported as a kubelet reports it, exit 137, reason ``OOMKilled``.
- ``mlchaos.io/cpu-limit: <quantity>``: the container gets a CFS quota of that many
  cores (a straggler).

Removing an annotation restores the pod's own limit. The node agent answers in
``mlchaos.io/fault-status``: ``<key>=<value>: applied: ...`` or ``...: refused: <why>``
(for instance where the node's cgroups are not writable). Kubelets of other
clusters ignore these annotations.
"""

from __future__ import annotations

__all__ = ["MEMORY_LIMIT_ANNOTATION", "CPU_LIMIT_ANNOTATION", "FAULT_STATUS_ANNOTATION", "FAULT_ANNOTATIONS"]

MEMORY_LIMIT_ANNOTATION = "mlchaos.io/memory-limit"
CPU_LIMIT_ANNOTATION = "mlchaos.io/cpu-limit"
FAULT_STATUS_ANNOTATION = "mlchaos.io/fault-status"
FAULT_ANNOTATIONS = (MEMORY_LIMIT_ANNOTATION, CPU_LIMIT_ANNOTATION)
