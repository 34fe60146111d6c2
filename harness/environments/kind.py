"""A kind cluster made for the run, with MinIO, Prometheus and the fault proxy running inside it.

:func:`kind_environment` creates (or reuses, ``--kind-name``) a kind cluster and loads the
pipeline image into it (:class:`harness.cluster.kind.KindCluster`), opens the run's namespace
through :class:`harness.cluster.kube.backend.KubernetesCluster`, and deploys the services of
``clusters/manifests/`` into that namespace with NodePort Services, so the harness reaches
them on the host ports ``clusters/kind/cluster.yaml`` maps. The pipeline's pods reach S3
through the fault proxy's in-cluster Service, so network and storage faults act inside the
cluster. The namespace goes with the run; the cluster goes too unless it was kept or reused.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from kubernetes import config

from harness.cluster.kind import KindCluster, KindEndpoints
from harness.cluster.kube import deploy
from harness.cluster.kube.backend import KubernetesCluster
from harness.cluster.options import ClusterOptions
from harness.environments.embedded import BACKFILL_PODS
from harness.environments.kubeconfig import copy_kubeconfig
from harness.errors import ServiceError
from harness.runtime import Environment
from harness.services._common import http_ok
from harness.services.proxy import ProxyControlClient
from harness.undo import UndoLog, default_undo_log

__all__ = ["CHAOS_TARGET", "SERVICE_TEMPLATES", "kind_environment", "service_documents", "wait_for_services"]

SERVICE_TEMPLATES = ("rbac", "minio", "prometheus", "fault-proxy")
"""Applied in this order into the run's namespace (rbac holds Prometheus's ServiceAccount)."""
CHAOS_TARGET = {"mlchaos.io/chaos-target": "true"}
"""The label clusters/kind/cluster.yaml puts on the workers: pipeline pods and node faults stay on them."""
REFERENCE_BUCKET = "harness-reference-runs"
SERVICES_TIMEOUT_S = 300.0  # the first start pulls the MinIO and Prometheus images


def service_documents(*, namespace: str, run: str, image: str, user: str, password: str) -> list[dict[str, Any]]:
    """The objects of :data:`SERVICE_TEMPLATES` for the run's namespace, with NodePort Services."""
    values = {
        "NAMESPACE": namespace, "RUN": run, "IMAGE": image, "SERVICE_TYPE": "NodePort",
        "BUCKET": REFERENCE_BUCKET, "MINIO_ROOT_USER": user, "MINIO_ROOT_PASSWORD": password,
        "S3_UPSTREAM": f"minio.{namespace}.svc:9000",
    }
    return [doc for name in SERVICE_TEMPLATES for doc in deploy.render(name, values)]


def _answers(url: str) -> bool:
    return http_ok(url, timeout=5)


def wait_for_services(endpoints: KindEndpoints, *, namespace: str, context: str, timeout: float = SERVICES_TIMEOUT_S,
                      probe: Callable[[str], bool] = _answers) -> None:
    """Return once MinIO, Prometheus and the fault proxy answer on their host ports; ServiceError naming the
    ones that do not after ``timeout`` seconds."""
    checks = {
        "MinIO": f"{endpoints.s3_direct_url}/minio/health/ready",
        "Prometheus": f"{endpoints.prometheus_url}/-/ready",
        "the fault proxy": f"{endpoints.proxy_control_url}/healthz",
    }
    deadline = time.monotonic() + timeout
    while True:
        waiting = [what for what, url in checks.items() if not probe(url)]
        if not waiting:
            return
        if time.monotonic() >= deadline:
            raise ServiceError(
                f"{', '.join(waiting)} did not answer within {timeout:g} s ({', '.join(checks[w] for w in waiting)}); "
                f"see `kubectl --context {context} -n {namespace} get pods,events`")
        time.sleep(1.0)


@contextmanager
def _workdir(undo: UndoLog, run: str) -> Iterator[Path]:
    path = Path(tempfile.gettempdir()) / f"mlchaos-kind-{run}-{secrets.token_hex(4)}"
    record = undo.add_tempdir(path=path, description=f"kind work folder of run {run}")
    path.mkdir(mode=0o700)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        undo.remove(record.id)


@contextmanager
def _minio_credentials(user: str, password: str) -> Iterator[dict[str, str]]:
    """The harness's own S3 reads (boto3 reads the environment) use the run's MinIO credentials while the
    run lasts; the environment is put back as it was on exit."""
    wanted = {"AWS_ACCESS_KEY_ID": user, "AWS_SECRET_ACCESS_KEY": password, "AWS_DEFAULT_REGION": "us-east-1"}
    before = {key: os.environ.get(key) for key in (*wanted, "AWS_SESSION_TOKEN", "AWS_PROFILE")}
    os.environ.update(wanted)
    for key in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):  # a user's AWS session would override the keys above
        os.environ.pop(key, None)
    try:
        yield wanted
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def kind_environment(
    *, options: ClusterOptions, run: str, cache_dir: Path | None = None,
    kubeconfig_copy: Path | None = None, progress: Callable[[str], None] = lambda line: None,
) -> Iterator[Environment]:
    """An ``Environment`` in namespace ``mlchaos-<run>`` of a kind cluster, its services deployed there.

    The cluster's kubeconfig lives in a temporary folder of the run (removed on exit, or by heal);
    ``kubeconfig_copy`` gets a copy that outlives it."""
    undo = default_undo_log()
    namespace = f"mlchaos-{run}"
    # Per run: nothing outside this run knows the MinIO it starts (at least 8 characters, MinIO's rule).
    user, password = f"mlchaos-{secrets.token_hex(4)}", secrets.token_urlsafe(24)
    with ExitStack() as stack:
        workdir = stack.enter_context(_workdir(undo, run))
        kind = stack.enter_context(KindCluster(
            name=options.kind_name, run=run, workdir=workdir, undo=undo, keep=options.keep_cluster,
            image=options.image, build=options.image is None, progress=progress))
        kubeconfig = kind.kubeconfig
        if kubeconfig_copy is not None:
            kubeconfig = copy_kubeconfig(kubeconfig, kubeconfig_copy)
        cluster = stack.enter_context(KubernetesCluster(
            kubeconfig=kubeconfig, context=kind.context, namespace=namespace, run=run, undo=undo, flavor="kind",
            image=kind.image, backfill_pods=BACKFILL_PODS, allow_cluster_scoped=True, allow_node_faults=True,
            node_selector=CHAOS_TARGET, tolerations=options.tolerations))
        progress(f"Kubernetes {cluster.version} on kind cluster {kind.name}; watch the run with: "
                 f"kubectl --kubeconfig {kubeconfig} -n {namespace} get pods -o wide")
        api_client = config.new_client_from_config(config_file=str(kubeconfig), context=kind.context)
        try:
            # The objects live in the run's namespace: they go when the backend deletes it.
            applied = deploy.apply(api_client, service_documents(
                namespace=namespace, run=run, image=kind.image, user=user, password=password))
        finally:
            api_client.close()
        progress(f"deployed {len(applied)} objects (MinIO, Prometheus, the fault proxy) into {namespace}; "
                 "waiting for them to answer")
        endpoints = kind.endpoints
        wait_for_services(endpoints, namespace=namespace, context=kind.context)
        credentials = stack.enter_context(_minio_credentials(user, password))
        yield Environment(
            cluster=cluster,
            s3_env=_pipeline_s3_env(namespace, credentials),
            cache_dir=cache_dir,
            scoped_quotas={"kind=backfill": BACKFILL_PODS},
            proxies={"s3": ProxyControlClient(endpoints.proxy_control_url)},
            s3_direct_url=endpoints.s3_direct_url,
            prometheus_url=endpoints.prometheus_url,
            kubeconfig=kubeconfig,
        )


def _pipeline_s3_env(namespace: str, credentials: Mapping[str, str]) -> dict[str, str]:
    """The pipeline's pods reach S3 through the fault proxy's in-cluster Service."""
    return {"S3_ENDPOINT_URL": f"http://fault-proxy.{namespace}.svc:8080", **credentials}
