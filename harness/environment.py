"""The environment experiments run in: a cluster and the pipeline's services, chosen with ``--cluster``.

``open_environment`` is the one factory the pytest plugin, the CLI and the
Chaos Toolkit control use. ``embedded`` (the default) starts the local
Kubernetes control plane with process nodes, moto's S3, Prometheus (scraping
the pods it finds through the API server) and the fault proxy; every backend is driven by
:class:`harness.cluster.kube.backend.KubernetesCluster` inside its own namespace.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from harness.cluster.embedded.cluster import EmbeddedCluster, NodeShape
from harness.cluster.kube.backend import KubernetesCluster
from harness.errors import HarnessError
from harness.runtime import Environment
from harness.services.pod_discovery import PodDiscovery
from harness.services.prometheus import PrometheusServer
from harness.services.proxy import FaultProxy
from harness.services.s3 import s3_service
from harness.undo import default_undo_log

__all__ = ["CLUSTER_KINDS", "NODES", "BACKFILL_PODS", "open_environment", "embedded_environment"]

CLUSTER_KINDS = ("embedded", "kind", "existing")
NODES = {"node-a": NodeShape(pods=2), "node-b": NodeShape(pods=2)}
BACKFILL_PODS = 1  # a ResourceQuota on backfill pods: a backfill storm queues instead of taking every slot

# moto accepts any credentials; a real S3/MinIO endpoint (HARNESS_S3_ENDPOINT) uses the caller's.
_MOTO_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextmanager
def open_environment(
    *, cluster: str = "embedded", run: str, keep_workdir: bool = False, cache_dir: Path | None = None,
    kubeconfig_copy: Path | None = None, progress: Callable[[str], None] = lambda line: None,
) -> Iterator[Environment]:
    """The environment for ``cluster`` (one of ``CLUSTER_KINDS``), stopped on exit."""
    if cluster == "embedded":
        with embedded_environment(run=run, keep_workdir=keep_workdir, cache_dir=cache_dir,
                                  kubeconfig_copy=kubeconfig_copy, progress=progress) as env:
            yield env
        return
    if cluster in CLUSTER_KINDS:
        raise HarnessError(f"--cluster {cluster} is not built yet; only --cluster embedded runs today")
    raise HarnessError(f"unknown cluster {cluster!r}; choose one of {', '.join(CLUSTER_KINDS)}")


@contextmanager
def embedded_environment(
    *, run: str = "adhoc", keep_workdir: bool = False, cache_dir: Path | None = None,
    kubeconfig_copy: Path | None = None, progress: Callable[[str], None] = lambda line: None,
) -> Iterator[Environment]:
    """An ``Environment`` over a freshly started embedded Kubernetes cluster, stopped on exit."""
    undo = default_undo_log()
    with ExitStack() as stack:
        embedded = stack.enter_context(EmbeddedCluster(keep_workdir=keep_workdir, nodes=NODES, undo=undo))
        plane = embedded.control_plane
        kubeconfig = embedded.kubeconfig
        if kubeconfig_copy is not None:
            kubeconfig_copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(kubeconfig, kubeconfig_copy)
            kubeconfig_copy.chmod(0o600)
            kubeconfig = kubeconfig_copy
        progress(f"Kubernetes {plane.version} ready in {embedded.started_in_seconds:.1f}s; watch it with: "
                 f"kubectl --kubeconfig {kubeconfig} get pods -A -o wide")
        s3 = stack.enter_context(s3_service(workdir=embedded.workdir / "s3", undo=undo))
        prometheus = stack.enter_context(PrometheusServer(workdir=embedded.workdir / "prometheus", undo=undo))
        stack.enter_context(PodDiscovery(kubeconfig=embedded.kubeconfig, publish=prometheus.set_targets))
        s3_url = urlsplit(s3.endpoint_url)
        # Pipelines reach S3 through the fault proxy; the harness's own reads go direct.
        proxy = stack.enter_context(FaultProxy(upstream_host=s3_url.hostname or "127.0.0.1",
                                               upstream_port=s3_url.port or 80))
        s3_env = {"S3_ENDPOINT_URL": proxy.url}
        if not os.environ.get("HARNESS_S3_ENDPOINT"):
            s3_env.update(_MOTO_CREDENTIALS)
            for key, value in _MOTO_CREDENTIALS.items():  # the harness's own inventory reads, too
                os.environ.setdefault(key, value)
        cluster = stack.enter_context(KubernetesCluster(
            kubeconfig=kubeconfig, namespace=f"mlchaos-{run}", run=run, undo=undo, flavor="embedded",
            backfill_pods=BACKFILL_PODS))
        yield Environment(
            cluster=cluster,
            s3_env=s3_env,
            cache_dir=cache_dir,
            logs_dir=embedded.pod_logs_dir,
            pod_limit=sum(n.pods for n in NODES.values()),
            scoped_quotas={"kind=backfill": BACKFILL_PODS},
            proxies={"s3": proxy},
            s3_direct_url=s3.endpoint_url,
            prometheus_url=prometheus.url,
            kubeconfig=kubeconfig,
        )
