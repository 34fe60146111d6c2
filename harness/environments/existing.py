"""An existing cluster (staging, EKS, GKE, or one from ``mlchaos cluster up``), reached through a kubeconfig context.

Safe by construction: the context must be on the allowlist before anything
connects; the run works in its own labelled namespace; cluster-scoped objects
and node faults only when the options allow them (see
:mod:`harness.cluster.options`). S3, Prometheus and the fault proxy are the
user's (``--s3-endpoint``, ``--prometheus-url``, ``--s3-proxy-control-url``)
or those the cluster advertises (:mod:`harness.cluster.kube.advertised`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from kubernetes import client, config

from harness.cluster.base import PRIORITY_BACKFILL, PRIORITY_DAILY
from harness.cluster.kube.advertised import AdvertisedServices, read_advertised
from harness.cluster.kube.backend import DEFAULT_IMAGE, KubernetesCluster
from harness.cluster.options import ClusterOptions, check_context_allowed
from harness.environments.embedded import BACKFILL_PODS, MOTO_CREDENTIALS
from harness.errors import HarnessError, ServiceError
from harness.runtime import Environment
from harness.services.proxy import ProxyControl, ProxyControlClient
from harness.undo import default_undo_log

__all__ = ["existing_environment", "load_context"]

_PASSED_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION")


def load_context(options: ClusterOptions) -> tuple[Path, str, client.ApiClient]:
    """The kubeconfig, the allowed context and a client for it. The allowlist is checked first, so a
    refused context is never even connected to."""
    context = check_context_allowed(options)
    kubeconfig = options.resolved_kubeconfig()
    if not kubeconfig.is_file():
        raise HarnessError(f"kubeconfig {kubeconfig} does not exist; pass --kubeconfig FILE or set KUBECONFIG")
    try:
        contexts, _ = config.list_kube_config_contexts(config_file=str(kubeconfig))
    except Exception as exc:
        raise HarnessError(f"cannot read kubeconfig {kubeconfig}: {exc}") from None
    names = [c["name"] for c in contexts]
    if context not in names:
        raise HarnessError(f"kubeconfig {kubeconfig} has no context {context!r} (it has: {', '.join(names)})")
    try:
        api_client = config.new_client_from_config(config_file=str(kubeconfig), context=context)
    except Exception as exc:
        raise HarnessError(f"cannot load context {context} from {kubeconfig}: {exc}") from None
    return kubeconfig, context, api_client


def _services(options: ClusterOptions, core: client.CoreV1Api) -> AdvertisedServices:
    if options.s3_endpoint or options.prometheus_url:
        if not (options.s3_endpoint and options.prometheus_url):
            raise HarnessError("give both --s3-endpoint and --prometheus-url, or neither (to use the services "
                               f"the cluster advertises in ConfigMap {options.services_configmap})")
        return AdvertisedServices(
            s3_endpoint=options.s3_endpoint, s3_direct_endpoint=options.s3_direct_endpoint or options.s3_endpoint,
            s3_proxy_control_url=options.s3_proxy_control_url or "", prometheus_url=options.prometheus_url)
    try:
        advertised = read_advertised(core, options.services_configmap)
    except ServiceError as exc:
        raise ServiceError(f"{exc}; is the cluster of context {options.context} reachable?") from None
    if advertised is None:
        raise HarnessError(
            f"context {options.context} advertises no services (no ConfigMap {options.services_configmap}); pass "
            "--s3-endpoint and --prometheus-url, or have the cluster's owner apply "
            "clusters/manifests/services-configmap.yaml (README: staging runbook)")
    if options.s3_proxy_control_url:
        advertised = replace(advertised, s3_proxy_control_url=options.s3_proxy_control_url)
    return advertised


def _s3_env(services: AdvertisedServices) -> dict[str, str]:
    env = {"S3_ENDPOINT_URL": services.s3_endpoint}
    if services.s3_test_credentials:
        env.update(MOTO_CREDENTIALS)
        for key, value in MOTO_CREDENTIALS.items():
            os.environ.setdefault(key, value)
    else:  # the harness's own credentials, handed to the pipeline's pods
        env.update({k: os.environ[k] for k in _PASSED_CREDENTIALS if os.environ.get(k)})
    return env


@contextmanager
def existing_environment(
    *, options: ClusterOptions, run: str, cache_dir: Path | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> Iterator[Environment]:
    """An ``Environment`` in namespace ``mlchaos-<run>`` of the cluster ``options.context`` reaches;
    the namespace (and whatever else the run made) is removed on exit."""
    kubeconfig, context, api_client = load_context(options)
    try:
        services = _services(options, client.CoreV1Api(api_client))
    finally:
        api_client.close()
    proxies: dict[str, ProxyControl] = {}
    if services.s3_proxy_control_url:
        proxy = ProxyControlClient(services.s3_proxy_control_url)
        proxy.stats()  # unreachable: one clear line now, not in the middle of an experiment
        proxies["s3"] = proxy
    namespace = f"mlchaos-{run}"
    progress(f"context {context} ({kubeconfig}): working in namespace {namespace}; S3 {services.s3_endpoint}, "
             f"Prometheus {services.prometheus_url}, fault proxy {services.s3_proxy_control_url or 'none'}")
    with KubernetesCluster(
        kubeconfig=kubeconfig, context=context, namespace=namespace, run=run, undo=default_undo_log(),
        flavor="existing", image=options.image or DEFAULT_IMAGE, backfill_pods=BACKFILL_PODS,
        allow_cluster_scoped=options.allow_cluster_scoped, allow_node_faults=options.allow_node_faults,
        node_selector=options.node_selector, tolerations=options.tolerations,
        priority_classes={PRIORITY_DAILY: options.priority_class_daily,
                          PRIORITY_BACKFILL: options.priority_class_backfill},
    ) as cluster:
        progress(f"Kubernetes {cluster.version}; watch the run with: kubectl --context {context} -n {namespace} "
                 "get pods -o wide")
        yield Environment(
            cluster=cluster,
            s3_env=_s3_env(services),
            cache_dir=cache_dir,
            scoped_quotas={"kind=backfill": BACKFILL_PODS},
            proxies=proxies,
            s3_direct_url=services.s3_direct_endpoint,
            prometheus_url=services.prometheus_url,
            kubeconfig=kubeconfig,
        )
