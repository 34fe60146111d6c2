"""Undo records for what the Kubernetes backend changes in a cluster: cordons, its namespace, PriorityClasses.

``heal`` reverts them with a client built from the recorded kubeconfig. A
kubeconfig file that no longer exists means its cluster is gone (an embedded
cluster's folder is removed with it), so there is nothing left to revert.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from harness.cluster.kube.manifests import CORDONED_BY_ANNOTATION
from harness.errors import HarnessError
from harness.undo import UndoLog, UndoRecord, register_kind

__all__ = ["add_cordon_record", "add_jobs_record", "add_namespace_record", "add_priority_class_record",
           "add_taint_record"]


def add_cordon_record(undo: UndoLog, *, kubeconfig: Path, context: str | None, node: str,
                      ephemeral: bool) -> UndoRecord:
    """``ephemeral``: the cluster lives only as long as the harness run (the embedded one)."""
    return undo.add(kind="k8s-cordon", description=f"cordon of node {node}",
                    extra={"kubeconfig": str(kubeconfig), "context": context or "", "node": node,
                           "ephemeral": "1" if ephemeral else ""})


def add_taint_record(undo: UndoLog, *, kubeconfig: Path, context: str | None, node: str, key: str,
                     ephemeral: bool) -> UndoRecord:
    return undo.add(kind="k8s-taint", description=f"taint {key} of node {node}",
                    extra={"kubeconfig": str(kubeconfig), "context": context or "", "node": node, "key": key,
                           "ephemeral": "1" if ephemeral else ""})


def add_namespace_record(undo: UndoLog, *, kubeconfig: Path, context: str | None, namespace: str,
                         ephemeral: bool) -> UndoRecord:
    return undo.add(kind="k8s-namespace", description=f"namespace {namespace}",
                    extra={"kubeconfig": str(kubeconfig), "context": context or "", "namespace": namespace,
                           "ephemeral": "1" if ephemeral else ""})


def add_priority_class_record(undo: UndoLog, *, kubeconfig: Path, context: str | None, name: str,
                              ephemeral: bool) -> UndoRecord:
    return undo.add(kind="k8s-priority-class", description=f"PriorityClass {name}",
                    extra={"kubeconfig": str(kubeconfig), "context": context or "", "name": name,
                           "ephemeral": "1" if ephemeral else ""})


def add_jobs_record(undo: UndoLog, *, kubeconfig: Path, context: str | None, namespace: str, selector: str,
                    description: str, ephemeral: bool) -> UndoRecord:
    """Jobs (and their pods) in ``namespace`` matching the label ``selector``, to delete (a fault's fillers)."""
    return undo.add(kind="k8s-jobs", description=description,
                    extra={"kubeconfig": str(kubeconfig), "context": context or "", "namespace": namespace,
                           "selector": selector, "ephemeral": "1" if ephemeral else ""})


def add_pod_annotation_record(undo: UndoLog, *, kubeconfig: Path, context: str | None, namespace: str, pod: str,
                              key: str, ephemeral: bool) -> UndoRecord:
    """An annotation set on a pod (a fault-control annotation: heal removes it, and the node restores the pod)."""
    return undo.add(kind="k8s-pod-annotation", description=f"annotation {key} of pod {namespace}/{pod}",
                    extra={"kubeconfig": str(kubeconfig), "context": context or "", "namespace": namespace,
                           "pod": pod, "key": key, "ephemeral": "1" if ephemeral else ""})


def _api(record: UndoRecord) -> client.ApiClient | None:
    path = Path(record.extra["kubeconfig"])
    if not path.exists():
        return None
    api_client: client.ApiClient = config.new_client_from_config(config_file=str(path),
                                                                 context=record.extra.get("context") or None)
    api_client.configuration.retries = 1
    return api_client


def _unreachable(record: UndoRecord, exc: Exception) -> HarnessError | None:
    """None when the cluster was the run's own and is gone with it; else the error to report."""
    if record.extra.get("ephemeral"):
        return None
    return HarnessError(f"cannot reach the cluster of {record.extra['kubeconfig']} to undo the {record.description} "
                        f"({exc}); run heal again once it answers")


def _undo(record: UndoRecord, *, what: str, act: Callable[[client.ApiClient], object], done: str) -> str:
    """Run ``act`` against the recorded cluster; a 404 means it is undone already."""
    api = _api(record)
    if api is None:
        return f"{what}: its cluster is gone"
    try:
        act(api)
    except ApiException as exc:
        if exc.status == 404:
            return f"{what} is already gone"
        _raise_unless_gone(record, exc)
        return f"{what}: its cluster is gone"
    except Exception as exc:  # urllib3 connection errors
        _raise_unless_gone(record, exc)
        return f"{what}: its cluster is gone"
    return done


def _heal_cordon(record: UndoRecord) -> str:
    node = record.extra["node"]
    body = {"spec": {"unschedulable": False}, "metadata": {"annotations": {CORDONED_BY_ANNOTATION: None}}}
    return _undo(record, what=f"node {node}", done=f"uncordoned node {node}",
                 act=lambda api: client.CoreV1Api(api).patch_node(node, body, _request_timeout=5))


def _heal_taint(record: UndoRecord) -> str:
    node, key = record.extra["node"], record.extra["key"]

    def act(api: client.ApiClient) -> None:
        core = client.CoreV1Api(api)
        current = core.read_node(node, _request_timeout=5)
        taints = [t for t in ((current.spec and current.spec.taints) or []) if t.key != key]
        core.patch_node(node, {"spec": {"taints": [api.sanitize_for_serialization(t) for t in taints]}},
                        _request_timeout=5)

    return _undo(record, what=f"node {node}", done=f"removed taint {key} from node {node}", act=act)


def _heal_namespace(record: UndoRecord) -> str:
    namespace = record.extra["namespace"]
    return _undo(record, what=f"namespace {namespace}", done=f"deleted namespace {namespace}",
                 act=lambda api: client.CoreV1Api(api).delete_namespace(
                     namespace, propagation_policy="Background", _request_timeout=5))


def _heal_priority_class(record: UndoRecord) -> str:
    name = record.extra["name"]
    return _undo(record, what=f"PriorityClass {name}", done=f"deleted PriorityClass {name}",
                 act=lambda api: client.SchedulingV1Api(api).delete_priority_class(name, _request_timeout=5))


def _heal_jobs(record: UndoRecord) -> str:
    namespace, selector = record.extra["namespace"], record.extra["selector"]

    def delete(api: client.ApiClient) -> None:
        client.BatchV1Api(api).delete_collection_namespaced_job(
            namespace, label_selector=selector, propagation_policy="Background", _request_timeout=5)
        client.CoreV1Api(api).delete_collection_namespaced_pod(namespace, label_selector=selector, _request_timeout=5)

    return _undo(record, what=f"jobs {selector} in {namespace}", done=f"deleted jobs {selector} in {namespace}",
                 act=delete)


def _heal_pod_annotation(record: UndoRecord) -> str:
    namespace, pod, key = record.extra["namespace"], record.extra["pod"], record.extra["key"]
    body = {"metadata": {"annotations": {key: None}}}
    return _undo(record, what=f"pod {namespace}/{pod}", done=f"removed annotation {key} of pod {namespace}/{pod}",
                 act=lambda api: client.CoreV1Api(api).patch_namespaced_pod(pod, namespace, body, _request_timeout=5))


def _raise_unless_gone(record: UndoRecord, exc: Exception) -> None:
    error = _unreachable(record, exc)
    if error is not None:
        raise error from exc


register_kind("k8s-cordon", _heal_cordon)
register_kind("k8s-taint", _heal_taint)
register_kind("k8s-namespace", _heal_namespace)
register_kind("k8s-priority-class", _heal_priority_class)
register_kind("k8s-pod-annotation", _heal_pod_annotation)
register_kind("k8s-jobs", _heal_jobs)
