"""The embedded cluster with its services: the default environment, and what ``mlchaos cluster up`` serves.

:func:`embedded_stack` starts the local Kubernetes control plane with process
nodes, moto's S3, Prometheus (fed with the pods it finds through the API
server) and the fault proxy in front of S3. :func:`embedded_environment` adds
the run's own namespace through the Kubernetes backend.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from harness.cluster.embedded.cluster import EmbeddedCluster, NodeShape
from harness.cluster.kube.backend import KubernetesCluster
from harness.environments.kubeconfig import copy_kubeconfig
from harness.runtime import Environment
from harness.services.pod_discovery import PodDiscovery
from harness.services.prometheus import PrometheusServer
from harness.services.proxy import FaultProxy
from harness.services.s3 import s3_service
from harness.undo import UndoLog, default_undo_log

__all__ = ["BACKFILL_PODS", "MOTO_CREDENTIALS", "NODES", "EmbeddedStack", "embedded_environment", "embedded_stack"]

GPUS_PER_NODE = 8  # advertised nvidia.com/gpu: the scheduler accounts them, no real GPU behind them
NODES = {"node-a": NodeShape(pods=2, gpus=GPUS_PER_NODE), "node-b": NodeShape(pods=2, gpus=GPUS_PER_NODE)}
BACKFILL_PODS = 1  # a ResourceQuota on backfill pods: a backfill storm queues instead of taking every slot

MOTO_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
"""moto accepts any credentials; a real S3/MinIO endpoint (HARNESS_S3_ENDPOINT) uses the caller's."""


@dataclass(frozen=True, kw_only=True)
class EmbeddedStack:
    """A started embedded cluster and its services (all on loopback)."""

    cluster: EmbeddedCluster
    kubeconfig: Path  # the cluster's own kubeconfig (or its copy, when one was asked for)
    s3_url: str  # S3 itself
    proxy: FaultProxy  # in front of S3: what pipelines use
    prometheus_url: str
    test_credentials: bool  # True when S3 is moto, which takes any credentials


@contextmanager
def embedded_stack(
    *, undo: UndoLog, keep_workdir: bool = False, kubeconfig_copy: Path | None = None,
    nodes: dict[str, NodeShape] | None = None, progress: Callable[[str], None] = lambda line: None,
) -> Iterator[EmbeddedStack]:
    """The embedded cluster, S3, Prometheus and the fault proxy, stopped (and their undo records
    removed) on exit."""
    with ExitStack() as stack:
        embedded = stack.enter_context(EmbeddedCluster(keep_workdir=keep_workdir, nodes=nodes or NODES, undo=undo))
        kubeconfig = embedded.kubeconfig
        if kubeconfig_copy is not None:
            kubeconfig = copy_kubeconfig(kubeconfig, kubeconfig_copy)
        progress(f"Kubernetes {embedded.control_plane.version} ready in {embedded.started_in_seconds:.1f}s; "
                 f"watch it with: kubectl --kubeconfig {kubeconfig} get pods -A -o wide")
        s3 = s3_service(workdir=embedded.workdir / "s3", undo=undo)
        stack.enter_context(s3)  # both kinds enter as themselves
        prometheus = stack.enter_context(PrometheusServer(workdir=embedded.workdir / "prometheus", undo=undo))
        stack.enter_context(PodDiscovery(kubeconfig=embedded.kubeconfig, publish=prometheus.set_targets))
        s3_url = urlsplit(s3.endpoint_url)
        proxy = stack.enter_context(FaultProxy(upstream_host=s3_url.hostname or "127.0.0.1",
                                               upstream_port=s3_url.port or 80))
        test_credentials = not os.environ.get("HARNESS_S3_ENDPOINT")
        if test_credentials:
            for key, value in MOTO_CREDENTIALS.items():  # the harness's own inventory reads, too
                os.environ.setdefault(key, value)
        yield EmbeddedStack(cluster=embedded, kubeconfig=kubeconfig, s3_url=s3.endpoint_url, proxy=proxy,
                            prometheus_url=prometheus.url, test_credentials=test_credentials)


@contextmanager
def embedded_environment(
    *, run: str = "adhoc", keep_workdir: bool = False, cache_dir: Path | None = None,
    kubeconfig_copy: Path | None = None, progress: Callable[[str], None] = lambda line: None,
) -> Iterator[Environment]:
    """An ``Environment`` over a freshly started embedded Kubernetes cluster, stopped on exit."""
    undo = default_undo_log()
    with ExitStack() as stack:
        services = stack.enter_context(embedded_stack(undo=undo, keep_workdir=keep_workdir,
                                                      kubeconfig_copy=kubeconfig_copy, progress=progress))
        # Pipelines reach S3 through the fault proxy; the harness's own reads go direct.
        s3_env = {"S3_ENDPOINT_URL": services.proxy.url}
        if services.test_credentials:
            s3_env.update(MOTO_CREDENTIALS)
        cluster = stack.enter_context(KubernetesCluster(
            kubeconfig=services.kubeconfig, namespace=f"mlchaos-{run}", run=run, undo=undo, flavor="embedded",
            backfill_pods=BACKFILL_PODS, node_processes=services.cluster))
        yield Environment(
            cluster=cluster,
            s3_env=s3_env,
            cache_dir=cache_dir,
            logs_dir=services.cluster.pod_logs_dir,
            pod_limit=sum(n.pods for n in NODES.values()),
            scoped_quotas={"kind=backfill": BACKFILL_PODS},
            proxies={"s3": services.proxy},
            s3_direct_url=services.s3_url,
            prometheus_url=services.prometheus_url,
            kubeconfig=services.kubeconfig,
        )
