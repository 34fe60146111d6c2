"""``mlchaos cluster up``: the embedded cluster on its own, for ``kubectl`` and for ``--cluster existing``.

It starts the embedded cluster with its services (S3, Prometheus, the fault
proxy with its control API), creates the harness's PriorityClasses as the
cluster's owner would, advertises the services in
``kube-public/mlchaos-services``, writes the kubeconfig where asked and keeps
everything running until ``mlchaos cluster down``, Ctrl-C or SIGTERM. A state
file in the harness's state folder lets ``cluster down`` find it.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from harness.cluster.base import PRIORITY_BACKFILL, PRIORITY_DAILY
from harness.cluster.embedded.control_plane import CONTEXT_NAME
from harness.cluster.kube.advertised import INSTALLED_BY_LABEL, AdvertisedServices, advertise
from harness.cluster.kube.manifests import priority_class_manifest
from harness.cluster.kube.objects import as_body
from harness.environments.embedded import embedded_stack
from harness.errors import HarnessError
from harness.services.proxy import ProxyControlServer
from harness.undo import default_state_dir, default_undo_log, process_start_ticks

__all__ = ["CONTEXT_NAME", "ClusterUpState", "cluster_down", "cluster_up", "running_cluster"]

SERVICES_CONFIGMAP = "kube-public/mlchaos-services"


@dataclass(frozen=True, kw_only=True)
class ClusterUpState:
    """What ``cluster down`` needs to find a running ``cluster up``."""

    pid: int
    start_ticks: int
    kubeconfig: str
    context: str


def _state_file() -> Path:
    return default_state_dir() / "cluster-up.json"


def running_cluster() -> ClusterUpState | None:
    """The ``cluster up`` still running on this machine, if any (a stale state file is removed)."""
    path = _state_file()
    try:
        state = ClusterUpState(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    if process_start_ticks(state.pid) != state.start_ticks:
        path.unlink(missing_ok=True)
        return None
    return state


def cluster_up(*, kubeconfig: Path, progress: Callable[[str], None] = print,
               ready: Callable[[ClusterUpState], None] | None = None) -> None:
    """Run the embedded cluster until interrupted (KeyboardInterrupt from Ctrl-C or SIGTERM)."""
    other = running_cluster()
    if other is not None:
        raise HarnessError(f"a cluster from mlchaos cluster up is already running (pid {other.pid}, kubeconfig "
                           f"{other.kubeconfig}); stop it with: mlchaos cluster down")
    _refuse_foreign_kubeconfig(kubeconfig)
    undo = default_undo_log()
    with ExitStack() as stack:
        stack.callback(kubeconfig.unlink, missing_ok=True)  # it names a cluster that is gone once this returns
        services = stack.enter_context(embedded_stack(undo=undo, kubeconfig_copy=kubeconfig, progress=progress))
        control = stack.enter_context(ProxyControlServer(services.proxy, host="127.0.0.1", port=0))
        api_client = config.new_client_from_config(config_file=str(kubeconfig))
        stack.callback(api_client.close)
        _install_priority_classes(client.SchedulingV1Api(api_client))
        advertised = AdvertisedServices(
            s3_endpoint=services.proxy.url, s3_direct_endpoint=services.s3_url,
            s3_proxy_control_url=control.url, prometheus_url=services.prometheus_url,
            s3_test_credentials=services.test_credentials)
        advertise(client.CoreV1Api(api_client), SERVICES_CONFIGMAP, advertised, installed_by="cluster-up")
        state = ClusterUpState(pid=os.getpid(), start_ticks=process_start_ticks(os.getpid()) or 0,
                               kubeconfig=str(kubeconfig), context=CONTEXT_NAME)
        path = _state_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(state.__dict__), encoding="utf-8")
        stack.callback(path.unlink, missing_ok=True)
        progress(f"cluster up: kubeconfig {kubeconfig}, context {CONTEXT_NAME}")
        progress(f"  S3 (through the fault proxy): {services.proxy.url}   S3 direct: {services.s3_url}")
        progress(f"  fault proxy control API: {control.url}   Prometheus: {services.prometheus_url}")
        progress(f"  advertised in ConfigMap {SERVICES_CONFIGMAP}; run the suite on it with:")
        progress(f"  make chaos CLUSTER=existing CONTEXT={CONTEXT_NAME} ALLOW_CONTEXT={CONTEXT_NAME} "
                 f"KUBECONFIG={kubeconfig}")
        progress("  stop with Ctrl-C or: mlchaos cluster down")
        if ready is not None:
            ready(state)
        while True:
            time.sleep(1)


def _refuse_foreign_kubeconfig(path: Path) -> None:
    """``cluster up`` writes (and later removes) its kubeconfig: never over one that holds other clusters."""
    if not path.exists():
        return
    try:
        contexts, _ = config.list_kube_config_contexts(config_file=str(path))
        names = {c["name"] for c in contexts}
    except Exception:
        names = {"<unreadable>"}
    if names != {CONTEXT_NAME}:
        raise HarnessError(f"{path} already exists and holds other contexts ({', '.join(sorted(names))}); "
                           "give cluster up a new file with --kubeconfig")


def _install_priority_classes(scheduling: client.SchedulingV1Api) -> None:
    """The classes the harness's runs use, installed as a cluster's owner would (no run owns them)."""
    for name, value in ((PRIORITY_DAILY, 1000), (PRIORITY_BACKFILL, 0)):
        body = priority_class_manifest(name, value=value, description="ML chaos harness (installed by cluster up)",
                                       labels={INSTALLED_BY_LABEL: "cluster-up"})
        try:
            scheduling.create_priority_class(as_body(body, client.V1PriorityClass))
        except ApiException as exc:
            if exc.status != 409:
                raise


def cluster_down(*, timeout: float = 60.0) -> str:
    """Stop the running ``cluster up`` (SIGTERM, then wait for it to clean up); a line saying what happened."""
    state = running_cluster()
    if state is None:
        return "cluster down: no cluster from mlchaos cluster up is running"
    os.kill(state.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while process_start_ticks(state.pid) == state.start_ticks:
        if time.monotonic() > deadline:
            raise HarnessError(f"cluster up (pid {state.pid}) is still running {timeout:g} s after SIGTERM; "
                               f"kill it with: kill -9 {state.pid} && mlchaos heal")
        time.sleep(0.2)
    return f"cluster down: stopped the cluster of {state.kubeconfig} (pid {state.pid})"
