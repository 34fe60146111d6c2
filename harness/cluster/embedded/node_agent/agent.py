"""The node agent: one process node registered with the API server and kept Ready.

It creates the Node (capacity in pods, CPU and memory; its log endpoint as the
kubelet endpoint), renews the node's Lease in ``kube-node-lease`` every second
and its Ready condition every few seconds, watches the pods bound to it and
hands each to a :class:`PodWorker`. When the agent stops, heartbeats stop, so
Kubernetes sees a node that stopped reporting (NotReady after the node monitor
grace period).
"""

from __future__ import annotations

import datetime
import logging
import os
import platform
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from harness import lifecycle
from harness.cluster.embedded.node_agent.cpu_limits import CpuLimits
from harness.cluster.embedded.node_agent.log_server import LogServer
from harness.cluster.embedded.node_agent.pod_cgroups import PodCgroups
from harness.cluster.embedded.node_agent.pod_worker import PodDict, PodWorker
from harness.cluster.kube.objects import as_body, meta
from harness.undo import UndoLog

__all__ = ["NodeAgent", "NodeConfig", "PROCESS_NODE_LABEL"]

log = logging.getLogger(__name__)

PROCESS_NODE_LABEL = "mlchaos.io/process-node"
LEASE_RENEW_SECONDS = 1.0
STATUS_EVERY_SECONDS = 5.0
SHUTDOWN_GRACE_CAP_SECONDS = 10.0


@dataclass(frozen=True, kw_only=True)
class NodeConfig:
    name: str
    pods: int
    cpu: str
    memory: str
    gpus: int = 0  # advertised as nvidia.com/gpu


def _micro_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class NodeAgent:
    """Serves one node until :meth:`stop`."""

    def __init__(self, *, kubeconfig: Path, node: NodeConfig, workdir: Path, pod_cwd: Path, undo: UndoLog) -> None:
        api_client = config.new_client_from_config(config_file=str(kubeconfig))
        api_client.configuration.connection_pool_maxsize = 32
        self._api = client.CoreV1Api(api_client)
        self._leases = client.CoordinationV1Api(api_client)
        self._serialize = api_client.sanitize_for_serialization
        self.node = node
        self._workdir = Path(workdir)
        self._pod_cwd = Path(pod_cwd)
        self._undo = undo
        self._cpu_limits = CpuLimits(undo=undo, name=f"ml-chaos-{os.getpid()}-{node.name}")
        # Each container attempt's own memory and CPU cgroups: memory limits, OOM kills, resource faults.
        self._pod_cgroups = PodCgroups(undo=undo, name=f"ml-chaos-{os.getpid()}-{node.name}-pod")
        self._workers: dict[str, PodWorker] = {}  # by uid
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._logs = LogServer(lookup=self._log_lookup, certdir=self._workdir / "pki", name=node.name)

    # --- lifecycle ---------------------------------------------------------------

    def run(self) -> None:
        """Register the node, then heartbeat and serve pods until :meth:`stop` is called."""
        self._logs.start()
        self._register_when_the_api_answers()
        threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True).start()
        watcher = threading.Thread(target=self._watch_pods, name="pod-watch", daemon=True)
        watcher.start()
        self._stopping.wait()
        self._shutdown()

    def stop(self) -> None:
        self._stopping.set()

    def _shutdown(self) -> None:
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.shutdown(grace_cap=SHUTDOWN_GRACE_CAP_SECONDS)
        for worker in workers:
            worker.finished.wait(SHUTDOWN_GRACE_CAP_SECONDS + 5)
        # A worker that did not finish in time leaves its attempt's cgroups: kill what runs there and remove
        # them, before the CPU-limit groups they live under.
        stuck = self._pod_cgroups.close()
        if stuck:
            log.warning("cgroups still busy, left to heal: %s", ", ".join(stuck))
        self._cpu_limits.close()
        self._logs.stop()

    # --- the node ----------------------------------------------------------------

    def _register_when_the_api_answers(self, timeout: float = 60.0) -> None:
        """The agent may start before the API server is ready (their start-ups overlap): retry until it answers."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._register()
                return
            except Exception as exc:  # connection refused, or 5xx while the API server finishes starting
                if time.monotonic() > deadline or self._stopping.is_set():
                    raise
                log.debug("API server not ready yet: %s", exc)
                self._stopping.wait(0.05)

    def _register(self) -> None:
        n = self.node
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": n.name,
                "labels": {
                    "kubernetes.io/hostname": n.name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    PROCESS_NODE_LABEL: "true",
                },
            },
        }
        try:
            self._api.create_node(as_body(body, client.V1Node))
        except ApiException as exc:
            if exc.status != 409:
                raise
        self._patch_node_status()
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": n.name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": n.name, "leaseDurationSeconds": 40, "renewTime": _micro_now()},
        }
        try:
            self._leases.create_namespaced_lease("kube-node-lease", as_body(lease, client.V1Lease))
        except ApiException as exc:
            if exc.status != 409:
                raise

    def _patch_node_status(self) -> None:
        n = self.node
        capacity = {"cpu": n.cpu, "memory": n.memory, "pods": str(n.pods)}
        if n.gpus:
            capacity["nvidia.com/gpu"] = str(n.gpus)
        now = _now()

        def condition(kind: str, status: str, reason: str) -> dict[str, str]:
            return {"type": kind, "status": status, "reason": reason, "lastHeartbeatTime": now,
                    "lastTransitionTime": now, "message": f"process node agent: {reason}"}

        status = {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": [
                condition("Ready", "True", "KubeletReady"),
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID"),
            ],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": n.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self._logs.port}},
            "nodeInfo": {
                "kubeletVersion": "v1.20.2-mlchaos-process-node",
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
                "containerRuntimeVersion": "process://1",
                "osImage": platform.platform(),
                "kernelVersion": platform.release(),
                "machineID": "",
                "systemUUID": "",
                "bootID": uuid.uuid4().hex,
            },
        }
        # lastTransitionTime must not move while the status does not change: only send it on registration.
        self._api.patch_node_status(self.node.name, {"status": status})

    def _heartbeat(self) -> None:
        since_status = 0.0
        while not self._stopping.wait(LEASE_RENEW_SECONDS):
            try:
                self._leases.patch_namespaced_lease(
                    self.node.name, "kube-node-lease", {"spec": {"renewTime": _micro_now()}})
                since_status += LEASE_RENEW_SECONDS
                if since_status >= STATUS_EVERY_SECONDS:
                    since_status = 0.0
                    self._api.patch_node_status(self.node.name, {"status": {"conditions": [
                        {"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": _now()}]}})
            except Exception as exc:  # the API server may be restarting; keep trying
                log.warning("heartbeat of %s failed: %s", self.node.name, exc)

    # --- pods --------------------------------------------------------------------

    def _watch_pods(self) -> None:
        selector = f"spec.nodeName={self.node.name}"
        while not self._stopping.is_set():
            try:
                listed = self._api.list_pod_for_all_namespaces(field_selector=selector)
                seen: set[str] = set()
                for pod in listed.items:
                    seen.add(meta(pod).uid or "")
                    self._on_pod("MODIFIED", self._serialize(pod))
                self._forget_missing(seen)
                stream = watch.Watch().stream(
                    self._api.list_pod_for_all_namespaces, field_selector=selector,
                    resource_version=listed.metadata and listed.metadata.resource_version, timeout_seconds=300,
                )
                for item in stream:
                    if self._stopping.is_set():
                        return
                    self._on_pod(str(item["type"]), self._serialize(item["object"]))
            except Exception as exc:  # a dropped watch or an expired resource version: list again
                if not self._stopping.is_set():
                    log.info("pod watch of %s restarts: %s", self.node.name, exc)
                    self._stopping.wait(0.5)

    def _forget_missing(self, present: set[str]) -> None:
        with self._lock:
            missing = [w for uid, w in self._workers.items() if uid not in present]
        for worker in missing:
            worker.gone()

    def _on_pod(self, kind: str, pod: PodDict) -> None:
        uid = pod["metadata"]["uid"]
        with self._lock:
            worker = self._workers.get(uid)
            if worker is None and kind != "DELETED" and not self._stopping.is_set():
                worker = PodWorker(
                    pod=pod, node=self.node.name, workdir=self._workdir, pod_cwd=self._pod_cwd, undo=self._undo,
                    cpu_limits=self._cpu_limits, patch_status=self._patch_pod_status,
                    patch_metadata=self._patch_pod_metadata, remove=self._remove_pod,
                    allocate_port=lifecycle.free_port, pod_cgroups=self._pod_cgroups,
                )
                self._workers[uid] = worker
                worker.start()
                return
        if worker is None:
            return
        if kind == "DELETED":
            worker.gone()
        else:
            worker.update(pod)

    def _patch_pod_status(self, namespace: str, name: str, body: PodDict) -> None:
        self._api.patch_namespaced_pod_status(name, namespace, body)

    def _patch_pod_metadata(self, namespace: str, name: str, body: PodDict) -> None:
        self._api.patch_namespaced_pod(name, namespace, body)

    def _remove_pod(self, namespace: str, name: str, uid: str) -> None:
        try:
            self._api.delete_namespaced_pod(
                name, namespace, body=client.V1DeleteOptions(grace_period_seconds=0,
                                                             preconditions=client.V1Preconditions(uid=uid)))
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    def _log_lookup(self, namespace: str, pod: str, previous: bool) -> Any:
        with self._lock:
            matches = [w for w in self._workers.values() if w.namespace == namespace and w.name == pod]
        if not matches:
            return None
        return matches[-1].log_file(previous=previous)
