"""``KubernetesCluster``: the ``Cluster`` protocol over the official Kubernetes client, for every cluster.

Each suite run works in its own labelled namespace (``mlchaos-<run>``). Pipeline
steps are ``batch/v1`` Jobs; daily runs get a higher PriorityClass than
backfills, and backfill pods are limited by a ResourceQuota scoped to their
PriorityClass, so a backfill storm queues in Kubernetes itself. Waits are built
on the collector's watches, not on sleep loops. Cordons and the namespace have
undo records, so ``heal`` reverts them after a killed run.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from harness.cluster.base import (
    PRIORITY_BACKFILL,
    PRIORITY_DAILY,
    DrainBlocked,
    EventSink,
    JobSpec,
    JobStatus,
    NodeControlUnsupported,
    NodeInfo,
    NodeProcesses,
    PodInfo,
)
from harness.cluster.kube import undo_kinds
from harness.cluster.kube.heartbeat import NamespaceHeartbeat
from harness.cluster.kube.manifests import (
    CORDONED_BY_ANNOTATION,
    CREATED_BY_RUN_LABEL,
    MANAGED_LABELS,
    job_manifest,
    namespace_manifest,
    priority_class_manifest,
    scoped_quota_manifest,
)
from harness.cluster.kube.objects import as_body, labels_of, meta, name_of, pod_phase
from harness.cluster.kube.pod_events import PodEventCollector
from harness.cluster.options import Toleration
from harness.errors import HarnessError, ServiceError
from harness.undo import UndoLog

__all__ = ["KubernetesCluster", "DEFAULT_IMAGE"]

DEFAULT_IMAGE = "ml-chaos-harness/pipeline:local"
_EVICTION_RETRY_SECONDS = 0.5
_EPOCH = datetime.fromtimestamp(0, tz=UTC)  # sorts a pod without a creation time first


class KubernetesCluster:
    """Works in namespace ``namespace`` of the cluster ``kubeconfig`` (``context``) reaches.

    ``backfill_pods`` is the scoped quota on backfill pods. ``flavor`` names the
    cluster in reports (``embedded``, ``kind``, ``existing``).

    On a cluster that is not the harness's own, pass ``allow_cluster_scoped=False``
    (the PriorityClasses, named by ``priority_classes``, must exist already) and
    ``allow_node_faults=False`` unless node faults were asked for; ``node_selector``
    places the pipeline's pods and bounds the nodes a fault may cordon or drain.
    """

    def __init__(
        self,
        *,
        kubeconfig: Path,
        namespace: str,
        run: str,
        undo: UndoLog,
        context: str | None = None,
        flavor: str = "embedded",
        image: str = DEFAULT_IMAGE,
        backfill_pods: int = 1,
        allow_cluster_scoped: bool = True,
        allow_node_faults: bool = True,
        node_selector: Mapping[str, str] | None = None,
        tolerations: Sequence[Toleration] = (),
        priority_classes: Mapping[str, str] | None = None,
        node_processes: NodeProcesses | None = None,
    ) -> None:
        self._kubeconfig = Path(kubeconfig)
        self._context = context
        try:
            api_client = config.new_client_from_config(config_file=str(kubeconfig), context=context)
        except Exception as exc:
            raise ServiceError(f"cannot load kubeconfig {kubeconfig} (context {context or 'current'}): {exc}") from exc
        api_client.configuration.connection_pool_maxsize = 64
        self._client = api_client
        self._core = client.CoreV1Api(api_client)
        self._batch = client.BatchV1Api(api_client)
        self._scheduling = client.SchedulingV1Api(api_client)
        self._namespace = namespace
        self._run = run
        self._undo = undo
        self._flavor = flavor
        self._image = image
        self._backfill_pods = backfill_pods
        self._version = ""
        self._stack = contextlib.ExitStack()
        self._collector = PodEventCollector(core=self._core, batch=self._batch, namespace=namespace,
                                            serialize=api_client.sanitize_for_serialization)
        self._cordons: dict[str, str] = {}  # node -> undo record id
        self._annotations: dict[tuple[str, str], str] = {}  # (pod, annotation) this run set -> undo record id
        self._taints: dict[tuple[str, str], str] = {}  # (node, key) -> undo record id
        self._node_processes = node_processes  # None: the harness does not run the nodes (kind, existing)
        self._eviction_version = ""
        self._allow_cluster_scoped = allow_cluster_scoped
        self._allow_node_faults = allow_node_faults
        self._node_selector = dict(node_selector or {})
        self._tolerations = [_toleration(t) for t in tolerations]
        # The harness's logical classes -> the cluster's: a staging owner may name classes of their own.
        self._priority_classes = {PRIORITY_DAILY: PRIORITY_DAILY, PRIORITY_BACKFILL: PRIORITY_BACKFILL,
                                  **(priority_classes or {})}
        self._heartbeat = NamespaceHeartbeat(self._core, namespace)

    # --- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> KubernetesCluster:
        try:
            self._version = client.VersionApi(self._client).get_code().git_version
        except Exception as exc:
            raise ServiceError(f"the cluster in {self._kubeconfig} does not answer: {exc}; is it running?") from exc
        try:
            self._create_namespace()
            self._heartbeat.start()
            self._stack.callback(self._heartbeat.stop)
            self._ensure_priority_classes()
            self._create_quota()
            self._collector.start()
            self._stack.callback(self._collector.stop)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Uncordon what this run cordoned and delete its namespace. Idempotent."""
        for node in list(self._cordons):
            with contextlib.suppress(Exception):
                self.uncordon(node)
        self._stack.close()

    @property
    def kind(self) -> str:
        return self._flavor

    @property
    def version(self) -> str:
        return self._version

    @property
    def namespace(self) -> str:
        return self._namespace

    @property
    def api_client(self) -> client.ApiClient:
        """The client this backend talks through (read-only observers such as the GPU sampler share it)."""
        api_client: client.ApiClient = self._client
        return api_client

    @property
    def kubeconfig(self) -> Path:
        return self._kubeconfig

    @property
    def context(self) -> str | None:
        return self._context

    def _create_namespace(self) -> None:
        record = undo_kinds.add_namespace_record(self._undo, kubeconfig=self._kubeconfig, context=self._context,
                                                 namespace=self._namespace, ephemeral=self._flavor == "embedded")
        self._core.create_namespace(as_body(namespace_manifest(self._namespace, run=self._run, heartbeat=time.time()),
                                            client.V1Namespace))

        def delete() -> None:
            with contextlib.suppress(ApiException):
                self._core.delete_namespace(self._namespace, propagation_policy="Background")
            self._undo.remove(record.id)

        self._stack.callback(delete)

    def _ensure_priority_classes(self) -> None:
        wanted = ((PRIORITY_DAILY, 1000, "ML chaos harness: daily pipeline runs"),
                  (PRIORITY_BACKFILL, 0, "ML chaos harness: backfill runs"))
        if not self._allow_cluster_scoped:
            for logical, _, _ in wanted:
                self._require_priority_class(self._priority_classes[logical])
            return
        for logical, value, description in wanted:
            name = self._priority_classes[logical]
            record = undo_kinds.add_priority_class_record(
                self._undo, kubeconfig=self._kubeconfig, context=self._context, name=name,
                ephemeral=self._flavor == "embedded")
            try:
                self._scheduling.create_priority_class(as_body(priority_class_manifest(
                    name, value=value, description=description, labels={CREATED_BY_RUN_LABEL: self._run}),
                    client.V1PriorityClass))
            except ApiException as exc:
                self._undo.remove(record.id)
                if exc.status != 409:  # it exists: another run or the cluster's owner made it
                    raise
                continue
            self._stack.callback(self._delete_priority_class, name, record.id)

    def _require_priority_class(self, name: str) -> None:
        try:
            self._scheduling.read_priority_class(name)
        except ApiException as exc:
            if exc.status == 404:
                raise HarnessError(
                    f"PriorityClass {name} does not exist on this cluster and the run may not create cluster-scoped "
                    "objects; pass --allow-cluster-scoped, or name existing classes with --priority-class-daily "
                    "and --priority-class-backfill") from None
            raise HarnessError(f"cannot read PriorityClass {name}: {_message(exc)}; "
                               "run mlchaos preflight to see the permissions the harness needs") from None

    def _delete_priority_class(self, name: str, record_id: str) -> None:
        """Remove a class this run created, unless another run's namespace may still use it."""
        others = [name_of(ns) for ns in self._core.list_namespace(
            label_selector=",".join(f"{k}={v}" for k, v in MANAGED_LABELS.items())).items
            if name_of(ns) != self._namespace and (ns.status is None or ns.status.phase != "Terminating")]
        if not others:
            with contextlib.suppress(ApiException):
                self._scheduling.delete_priority_class(name)
        self._undo.remove(record_id)

    def _create_quota(self) -> None:
        self._core.create_namespaced_resource_quota(
            self._namespace, as_body(scoped_quota_manifest("backfill-pods",
                                                           priority_class=self._priority_classes[PRIORITY_BACKFILL],
                                                           pods=self._backfill_pods), client.V1ResourceQuota))
        # Until the quota controller has filled in status.hard, the API server refuses every pod in its scope.
        deadline = time.monotonic() + 30
        while not (self._core.read_namespaced_resource_quota("backfill-pods", self._namespace).status or
                   client.V1ResourceQuotaStatus()).hard:
            if time.monotonic() > deadline:
                raise ServiceError("the ResourceQuota for backfills was not initialised by the quota controller "
                                   "within 30 s; is kube-controller-manager running?")
            time.sleep(0.05)

    # --- nodes -----------------------------------------------------------------------

    def nodes(self) -> list[NodeInfo]:
        pods = self._core.list_namespaced_pod(self._namespace,
                                              field_selector="status.phase!=Succeeded,status.phase!=Failed")
        running: dict[str, int] = {}
        for p in pods.items:
            if p.spec and p.spec.node_name:
                running[p.spec.node_name] = running.get(p.spec.node_name, 0) + 1
        result = []
        for n in self._core.list_node().items:
            status = n.status or client.V1NodeStatus()
            ready = any(c.type == "Ready" and c.status == "True" for c in (status.conditions or []))
            result.append(NodeInfo(name=name_of(n), pods=int((status.capacity or {}).get("pods", 0)),
                                   schedulable=not (n.spec and n.spec.unschedulable), ready=ready,
                                   running=running.get(name_of(n), 0)))
        return sorted(result, key=lambda n: n.name)

    def cordon(self, node: str) -> None:
        current = self._node_for_fault(node)
        if node in self._cordons:
            return
        if current.spec and current.spec.unschedulable:
            return  # cordoned by someone else: not ours to uncordon later
        self._cordons[node] = undo_kinds.add_cordon_record(
            self._undo, kubeconfig=self._kubeconfig, context=self._context, node=node,
            ephemeral=self._flavor == "embedded").id
        self._patch_node(node, {"spec": {"unschedulable": True},
                                "metadata": {"annotations": {CORDONED_BY_ANNOTATION: self._namespace}}})

    def uncordon(self, node: str) -> None:
        record = self._cordons.pop(node, None)
        if record is None:
            return  # this run did not cordon it
        self._patch_node(node, {"spec": {"unschedulable": False},
                                "metadata": {"annotations": {CORDONED_BY_ANNOTATION: None}}})
        self._undo.remove(record)

    def taint(self, node: str, *, key: str, value: str = "", effect: str = "NoSchedule") -> None:
        current = self._node_for_fault(node)
        if (node, key) in self._taints:
            return
        taints = list((current.spec and current.spec.taints) or [])
        if any(t.key == key for t in taints):
            return  # set by someone else (a real termination handler): not ours to remove later
        self._taints[(node, key)] = undo_kinds.add_taint_record(
            self._undo, kubeconfig=self._kubeconfig, context=self._context, node=node, key=key,
            ephemeral=self._flavor == "embedded").id
        taints.append(client.V1Taint(key=key, value=value or None, effect=effect))
        self._set_taints(node, taints)

    def untaint(self, node: str, *, key: str) -> None:
        record = self._taints.pop((node, key), None)
        if record is None:
            return  # this run did not taint it
        current = self._node_for_fault(node)
        self._set_taints(node, [t for t in ((current.spec and current.spec.taints) or []) if t.key != key])
        self._undo.remove(record)

    def _set_taints(self, node: str, taints: list[client.V1Taint]) -> None:
        # spec.taints has no merge key: a patch replaces the whole list, so send all of it.
        self._patch_node(node, {"spec": {"taints": [self._client.sanitize_for_serialization(t) for t in taints]}})

    def _processes(self, node: str, what: str) -> NodeProcesses:
        if self._node_processes is None:
            raise NodeControlUnsupported(
                f"cannot {what} node {node} on a {self._flavor} cluster: the harness does not run its nodes "
                "(only the embedded cluster's process nodes can be stopped, started or re-imaged)")
        return self._node_processes

    def stop_node(self, node: str) -> None:
        processes = self._processes(node, "stop")
        self._node_for_fault(node)
        processes.stop_agent(node)

    def start_node(self, node: str) -> None:
        processes = self._processes(node, "start")
        processes.start_agent(node)
        deadline = time.monotonic() + 60.0
        while not any(n.name == node and n.ready for n in self.nodes()):
            if time.monotonic() > deadline:
                raise HarnessError(f"node {node} was restarted but is not Ready after 60 s")
            time.sleep(0.2)

    def set_image_env(self, node: str, env: Mapping[str, str] | None) -> None:
        processes = self._processes(node, "re-image")
        self._node_for_fault(node)
        processes.set_image_env(node, env)

    def _node_for_fault(self, node: str) -> client.V1Node:
        """The node, once it is known that this run may cordon or drain it."""
        if not self._allow_node_faults:
            raise HarnessError(f"node faults are not allowed on this cluster, so node {node} was not touched; "
                               "pass --allow-node-faults (with --node-selector naming the nodes that may be used)")
        try:
            current = self._core.read_node(node)
        except ApiException as exc:
            if exc.status == 404:
                raise HarnessError(f"no node named {node!r}; nodes: {[n.name for n in self.nodes()]}") from None
            raise
        labels = labels_of(current)
        unmatched = {k: v for k, v in self._node_selector.items() if labels.get(k) != v}
        if unmatched:
            wanted = ",".join(f"{k}={v}" for k, v in self._node_selector.items())
            raise HarnessError(f"node {node} does not match --node-selector {wanted}, so it was not touched")
        return current

    def _patch_node(self, node: str, body: dict[str, Any]) -> None:
        try:
            self._core.patch_node(node, body)
        except ApiException as exc:
            if exc.status == 404:
                raise HarnessError(f"no node named {node!r}; nodes: {[n.name for n in self.nodes()]}") from None
            raise

    def drain(self, node: str, *, grace_period_seconds: float | None = None, timeout: float = 120.0) -> list[PodInfo]:
        self.cordon(node)
        # Only the run's own pods: other tenants' pods on a shared node are not the harness's to evict.
        pods = [p for p in self._core.list_namespaced_pod(self._namespace, field_selector=f"spec.nodeName={node}").items
                if pod_phase(p.status and p.status.phase) not in ("Succeeded", "Failed")
                and not meta(p).deletion_timestamp]
        deadline = time.monotonic() + timeout
        pending = list(pods)
        blocked = ""
        while pending:
            still = []
            for pod in pending:
                try:
                    self._evict(name_of(pod), meta(pod).namespace or self._namespace, grace_period_seconds)
                except ApiException as exc:
                    if exc.status == 429:  # a PodDisruptionBudget refuses, for now
                        blocked = _message(exc)
                        still.append(pod)
                    elif exc.status != 404:
                        raise
            pending = still
            if pending:
                if time.monotonic() > deadline:
                    names = ", ".join(name_of(p) for p in pending)
                    raise DrainBlocked(f"drain of {node} blocked after {timeout:g} s: {names} not evicted "
                                       f"({blocked}); relax the PodDisruptionBudget or raise the timeout")
                time.sleep(_EVICTION_RETRY_SECONDS)
        ours = [name_of(p) for p in pods]
        for name in ours:
            self._wait_gone(name, timeout=max(timeout, (grace_period_seconds or 30) + 30))
        return [self._final(name) for name in ours]

    def _evict(self, name: str, namespace: str, grace: float | None) -> None:
        if not self._eviction_version:
            groups = client.ApisApi(self._client).get_api_versions().groups
            policy = next((g for g in groups if g.name == "policy"), None)
            versions = {v.version for v in (policy.versions if policy else [])}
            self._eviction_version = "policy/v1" if "v1" in versions else "policy/v1beta1"
        body: dict[str, Any] = {"apiVersion": self._eviction_version, "kind": "Eviction",
                                "metadata": {"name": name, "namespace": namespace}}
        if grace is not None:
            body["deleteOptions"] = {"gracePeriodSeconds": int(grace)}
        self._core.create_namespaced_pod_eviction(name, namespace, as_body(body, client.V1Eviction))

    # --- jobs and pods ---------------------------------------------------------------

    def submit_job(self, spec: JobSpec, *, sink: EventSink) -> None:
        if not spec.command:
            raise HarnessError(f"job {spec.name!r} has an empty command; give JobSpec.command")
        self._collector.track(spec.name, sink)
        try:
            spec = replace(spec, priority_class=self._priority_classes.get(spec.priority_class, spec.priority_class))
            self._batch.create_namespaced_job(self._namespace, as_body(job_manifest(
                spec, namespace=self._namespace, image=self._image, node_selector=self._node_selector,
                tolerations=self._tolerations), client.V1Job))
        except ApiException as exc:
            raise HarnessError(f"the cluster refused job {spec.name!r}: {_message(exc)}") from None

    def job_status(self, name: str) -> JobStatus:
        try:
            job = self._batch.read_namespaced_job(name, self._namespace)
        except ApiException as exc:
            if exc.status == 404:
                raise HarnessError(f"no job named {name!r} in namespace {self._namespace}") from None
            raise
        reported, succeeded = self._collector.job_finished(name)
        status = job.status or client.V1JobStatus()
        return JobStatus(name=name, active=status.active or 0, failed=self._collector.job_failures(name),
                         succeeded=bool(succeeded) and reported, finished=reported)

    def wait_job(self, name: str, *, timeout: float) -> JobStatus:
        if not self._collector.wait(lambda: self._collector.job_finished(name)[0], timeout=timeout):
            raise HarnessError(f"job {name!r} did not finish within {timeout:g} s; look at its pods with "
                               f"kubectl --kubeconfig {self._kubeconfig} -n {self._namespace} get pods")
        reported, succeeded = self._collector.job_finished(name)
        return JobStatus(name=name, active=0, failed=self._collector.job_failures(name), succeeded=bool(succeeded),
                         finished=reported)

    def list_pods(self, *, labels: Mapping[str, str] | None = None) -> list[PodInfo]:
        selector = ",".join(f"{k}={v}" for k, v in {**MANAGED_LABELS, **(labels or {})}.items())
        items = self._core.list_namespaced_pod(self._namespace, label_selector=selector).items
        items.sort(key=lambda p: (meta(p).creation_timestamp or _EPOCH, name_of(p)))
        return [self._collector.pod(name_of(p)) or _info(p) for p in items]

    def delete_pod(self, name: str, *, grace_period_seconds: float | None = None) -> PodInfo:
        if grace_period_seconds is not None and grace_period_seconds < 0:
            raise HarnessError(f"grace period {grace_period_seconds} for pod {name!r} is negative; use 0 or more")
        options = client.V1DeleteOptions(
            grace_period_seconds=None if grace_period_seconds is None else int(grace_period_seconds))
        try:
            self._core.delete_namespaced_pod(name, self._namespace, body=options)
        except ApiException as exc:
            if exc.status == 404:
                raise HarnessError(f"no pod named {name!r} in namespace {self._namespace}") from None
            raise
        self._wait_gone(name, timeout=(grace_period_seconds if grace_period_seconds is not None else 30) + 60)
        return self._final(name)

    def delete_job(self, name: str) -> None:
        self._collector.forget_job(name)
        try:
            self._batch.delete_namespaced_job(name, self._namespace, propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise
        selector = ",".join(f"{k}={v}" for k, v in {**MANAGED_LABELS, "job-name": name}.items())
        for pod in self._core.list_namespaced_pod(self._namespace, label_selector=selector).items:
            with contextlib.suppress(ApiException):
                self._core.delete_namespaced_pod(name_of(pod), self._namespace)
            grace = pod.spec.termination_grace_period_seconds if pod.spec else None
            self._wait_gone(name_of(pod), timeout=(grace or 30) + 30)

    def annotate_pod(self, name: str, annotations: Mapping[str, str | None]) -> dict[str, str]:
        """Each annotation this run sets is recorded for ``heal`` before it is set, and forgotten once removed."""
        for key, value in annotations.items():
            if value is not None and (name, key) not in self._annotations:
                self._annotations[(name, key)] = undo_kinds.add_pod_annotation_record(
                    self._undo, kubeconfig=self._kubeconfig, context=self._context, namespace=self._namespace,
                    pod=name, key=key, ephemeral=self._flavor == "embedded").id
        try:
            if annotations:
                pod = self._core.patch_namespaced_pod(name, self._namespace,
                                                      {"metadata": {"annotations": dict(annotations)}})
            else:
                pod = self._core.read_namespaced_pod(name, self._namespace)
        except ApiException as exc:
            if exc.status == 404:
                self._forget_annotations(name, list(annotations))  # a gone pod keeps nothing to undo
                raise HarnessError(f"no pod named {name!r} in namespace {self._namespace}") from None
            raise
        self._forget_annotations(name, [k for k, v in annotations.items() if v is None])
        return dict(meta(pod).annotations or {})

    def _forget_annotations(self, pod: str, keys: Sequence[str]) -> None:
        for key in keys:
            record = self._annotations.pop((pod, key), None)
            if record is not None:
                self._undo.remove(record)

    def _wait_gone(self, name: str, *, timeout: float) -> None:
        if not self._collector.wait(lambda: self._collector.pod_gone(name), timeout=timeout):
            raise HarnessError(f"pod {name!r} still exists {timeout:g} s after its deletion; is its node's "
                               f"kubelet (node agent) running?")

    def _final(self, name: str) -> PodInfo:
        info = self._collector.pod(name)
        if info is None:
            raise HarnessError(f"pod {name!r} was never seen in namespace {self._namespace}")
        return info


def _info(pod: client.V1Pod) -> PodInfo:
    status = pod.status or client.V1PodStatus()
    cs = status.container_statuses[0] if status.container_statuses else None
    ended = None
    if cs is not None:
        ended = (cs.state.terminated if cs.state else None) or (cs.last_state.terminated if cs.last_state else None)
    return PodInfo(
        name=name_of(pod), job=labels_of(pod).get("job-name", ""), node=(pod.spec and pod.spec.node_name) or "",
        phase=pod_phase(status.phase), labels=labels_of(pod),
        restart_count=cs.restart_count if cs else 0, exit_code=ended.exit_code if ended else None,
        reason=(ended.reason or "") if ended else "", deleting=meta(pod).deletion_timestamp is not None,
    )


def _toleration(t: Toleration) -> dict[str, str]:
    if t.value:
        return {"key": t.key, "operator": "Equal", "value": t.value, "effect": t.effect}
    return {"key": t.key, "operator": "Exists", "effect": t.effect}


def _message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "").get("message", exc.reason))
    except (TypeError, ValueError):
        return str(exc.reason)
