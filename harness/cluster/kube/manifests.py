"""The Kubernetes objects the backend creates, as plain manifests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.cluster.base import JobSpec
from harness.cluster.kube.heartbeat import HEARTBEAT_ANNOTATION

__all__ = [
    "MANAGED_BY",
    "MANAGED_LABELS",
    "JOB_NAME_LABEL",
    "RUN_LABEL",
    "CREATED_BY_RUN_LABEL",
    "CORDONED_BY_ANNOTATION",
    "METRICS_PORT_ANNOTATION",
    "job_manifest",
    "namespace_manifest",
    "priority_class_manifest",
    "scoped_quota_manifest",
]

Manifest = dict[str, Any]

MANAGED_BY = "ml-chaos-harness"
MANAGED_LABELS = {"app.kubernetes.io/managed-by": MANAGED_BY}
JOB_NAME_LABEL = "job-name"  # Kubernetes' own label on a Job's pods
METRICS_PORT_ANNOTATION = "ports.mlchaos.io/metrics"
"""The metrics port of the pod: the declared one, or the host port a process node gave it."""


RUN_LABEL = "mlchaos.io/run"
CREATED_BY_RUN_LABEL = "mlchaos.io/created-by-run"
"""On a cluster-scoped object a run created (a PriorityClass): heal may remove it once no run is alive."""
CORDONED_BY_ANNOTATION = "mlchaos.io/cordoned-by"
"""On a node the harness cordoned: the namespace of the run that did, so heal can undo it from anywhere."""


def namespace_manifest(name: str, *, run: str, heartbeat: float) -> Manifest:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {**MANAGED_LABELS, RUN_LABEL: run},
                         "annotations": {HEARTBEAT_ANNOTATION: f"{heartbeat:.0f}"}}}


def priority_class_manifest(name: str, *, value: int, description: str, labels: Mapping[str, str]) -> Manifest:
    return {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": name, "labels": {**MANAGED_LABELS, **labels}},
            "value": value, "globalDefault": False, "description": description}


def scoped_quota_manifest(name: str, *, priority_class: str, pods: int) -> Manifest:
    """At most ``pods`` pods of ``priority_class`` at once; more are refused and their Jobs retry."""
    return {"apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": name, "labels": dict(MANAGED_LABELS)},
            "spec": {"hard": {"pods": str(pods)},
                     "scopeSelector": {"matchExpressions": [
                         {"scopeName": "PriorityClass", "operator": "In", "values": [priority_class]}]}}}


def job_manifest(spec: JobSpec, *, namespace: str, image: str, node_selector: Mapping[str, str] | None = None,
                 tolerations: Sequence[Manifest] = ()) -> Manifest:
    """A Job running ``spec.command`` in one container named ``main``.

    The container learns its pod, node and Job through the downward API
    (``POD_NAME``, ``NODE_NAME``, ``POD_IP``, ``JOB_NAME``) and its metrics port through
    ``METRICS_PORT``, read from the pod's ``ports.mlchaos.io/metrics`` annotation.
    """
    env: list[dict[str, Any]] = [{"name": k, "value": str(v)} for k, v in spec.env.items()]
    env += [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "JOB_NAME", "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{JOB_NAME_LABEL}']"}}},
    ]
    container: dict[str, Any] = {"name": "main", "image": spec.image or image, "command": list(spec.command),
                                 "env": env}
    annotations: dict[str, str] = {}
    if spec.metrics_port is not None:
        port = str(spec.metrics_port)
        container["ports"] = [{"name": "metrics", "containerPort": spec.metrics_port}]
        env.append({"name": "METRICS_PORT",
                    "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{METRICS_PORT_ANNOTATION}']"}}})
        annotations = {"prometheus.io/scrape": "true", "prometheus.io/port": port, METRICS_PORT_ANNOTATION: port}
    requests = {"cpu": spec.cpu_request} if spec.cpu_request else {}
    limits = {k: v for k, v in (("cpu", spec.cpu_limit), ("memory", spec.memory_limit)) if v}
    if spec.gpus:
        limits["nvidia.com/gpu"] = str(spec.gpus)
    if requests or limits:
        container["resources"] = {k: v for k, v in (("requests", requests), ("limits", limits)) if v}
    pod_spec: dict[str, Any] = {
        "restartPolicy": spec.restart_policy,
        "terminationGracePeriodSeconds": spec.termination_grace_period_seconds,
        "enableServiceLinks": False,
        "automountServiceAccountToken": False,
        "containers": [container],
    }
    if spec.priority_class:
        pod_spec["priorityClassName"] = spec.priority_class
    if node_selector or spec.node_selector:
        pod_spec["nodeSelector"] = {**(node_selector or {}), **spec.node_selector}
    if tolerations:
        pod_spec["tolerations"] = list(tolerations)
    labels = {**MANAGED_LABELS, **spec.labels}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": spec.name, "namespace": namespace, "labels": labels},
        "spec": {
            "backoffLimit": spec.backoff_limit,
            "parallelism": 1,
            "completions": 1,
            "template": {"metadata": {"labels": labels, "annotations": annotations}, "spec": pod_spec},
        },
    }
