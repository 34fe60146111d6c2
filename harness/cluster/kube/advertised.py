"""The services a cluster advertises to the harness: one ConfigMap its owner installs.

``kube-public/mlchaos-services`` (the default; ``--services-configmap`` names
another) holds where the pipeline's S3, the harness's own view of it, the fault
proxy's control API and Prometheus are. ``mlchaos cluster up`` installs one for
its own services; on staging the cluster's owner applies
``clusters/manifests/services-configmap.yaml``. Keys are documented on
:class:`AdvertisedServices`.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from harness.cluster.kube.manifests import MANAGED_LABELS
from harness.cluster.kube.objects import as_body
from harness.errors import HarnessError, ServiceError

__all__ = ["AdvertisedServices", "read_advertised", "advertise"]

INSTALLED_BY_LABEL = "mlchaos.io/installed-by"


@dataclass(frozen=True, kw_only=True)
class AdvertisedServices:
    """``s3-endpoint``: what pipeline pods use (usually the fault proxy in front of S3);
    ``s3-direct-endpoint``: what the harness reads the store through (default: ``s3-endpoint``);
    ``s3-proxy-control-url``: the fault proxy's control API ("" when there is none);
    ``prometheus-url``: a Prometheus that scrapes pods annotated ``prometheus.io/scrape``;
    ``s3-test-credentials``: "true" when the S3 accepts any credentials (moto, a throwaway MinIO)."""

    s3_endpoint: str
    s3_direct_endpoint: str
    s3_proxy_control_url: str
    prometheus_url: str
    s3_test_credentials: bool = False

    def data(self) -> dict[str, str]:
        return {"s3-endpoint": self.s3_endpoint, "s3-direct-endpoint": self.s3_direct_endpoint,
                "s3-proxy-control-url": self.s3_proxy_control_url, "prometheus-url": self.prometheus_url,
                "s3-test-credentials": "true" if self.s3_test_credentials else "false"}


def read_advertised(core: client.CoreV1Api, location: str) -> AdvertisedServices | None:
    """The services advertised at ``NAMESPACE/NAME``; None when the cluster advertises none."""
    namespace, _, name = location.partition("/")
    try:
        data = core.read_namespaced_config_map(name, namespace, _request_timeout=10).data or {}
    except ApiException as exc:
        if exc.status == 404:
            return None
        if exc.status == 403:
            raise HarnessError(f"may not read ConfigMap {location} (forbidden); grant get on configmaps in "
                               f"{namespace}, or pass --s3-endpoint and --prometheus-url") from None
        raise ServiceError(f"cannot read ConfigMap {location}: {exc.reason}") from None
    missing = [k for k in ("s3-endpoint", "prometheus-url") if not data.get(k)]
    if missing:
        raise HarnessError(f"ConfigMap {location} lacks {', '.join(missing)}; fix it "
                           "(see clusters/manifests/services-configmap.yaml) "
                           "or pass --s3-endpoint and --prometheus-url")
    return AdvertisedServices(
        s3_endpoint=data["s3-endpoint"], s3_direct_endpoint=data.get("s3-direct-endpoint") or data["s3-endpoint"],
        s3_proxy_control_url=data.get("s3-proxy-control-url", ""), prometheus_url=data["prometheus-url"],
        s3_test_credentials=data.get("s3-test-credentials", "").lower() == "true")


def advertise(core: client.CoreV1Api, location: str, services: AdvertisedServices, *, installed_by: str) -> None:
    """Create or replace the ConfigMap at ``location`` (the owner's side of :func:`read_advertised`)."""
    namespace, _, name = location.partition("/")
    body = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {**MANAGED_LABELS, INSTALLED_BY_LABEL: installed_by}},
            "data": services.data()}
    try:
        core.create_namespaced_config_map(namespace, as_body(body, client.V1ConfigMap))
    except ApiException as exc:
        if exc.status != 409:
            raise
        core.replace_namespaced_config_map(name, namespace, as_body(body, client.V1ConfigMap))
