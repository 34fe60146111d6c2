"""Render the templates of ``clusters/manifests/`` and apply them to a cluster.

A template is YAML (several documents allowed) with ``string.Template`` placeholders
(``${NAMESPACE}``, ``${RUN}``, ``${IMAGE}``, ...; ``$$`` is a literal ``$``).
:func:`render` substitutes them as text and parses the result. One rule goes beyond
substitution: a Service rendered with ``type: ClusterIP`` has its ports' ``nodePort``
fields removed, since Kubernetes forbids them there, so one template serves both
``SERVICE_TYPE`` values (the node ports written in the templates are the ones
``clusters/kind/cluster.yaml`` maps to the host).

:func:`apply` creates or updates the objects with server-side apply (beta and on by
default since Kubernetes 1.16, so the embedded 1.20 cluster has it; GA in 1.22), and
:func:`delete` removes what :func:`apply` reported, in reverse order.
"""

from __future__ import annotations

import string
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError
from kubernetes.dynamic.resource import Resource

from harness.errors import HarnessError

__all__ = ["FIELD_MANAGER", "MANIFESTS_DIR", "SERVICE_TYPES", "AppliedObject", "apply", "delete", "placeholders",
           "render", "template_names"]

MANIFESTS_DIR = Path(__file__).resolve().parents[3] / "clusters" / "manifests"
FIELD_MANAGER = "ml-chaos-harness"
SERVICE_TYPES = ("ClusterIP", "NodePort")


@dataclass(frozen=True, kw_only=True)
class AppliedObject:
    """One object :func:`apply` made or updated; ``namespace`` is "" for a cluster-scoped one."""

    api_version: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name} ({self.api_version})"


def template_names() -> list[str]:
    """The templates there are: ``clusters/manifests/<name>.yaml``."""
    return sorted(p.stem for p in MANIFESTS_DIR.glob("*.yaml"))


def _template(name: str) -> tuple[Path, string.Template]:
    path = MANIFESTS_DIR / f"{name}.yaml"
    try:
        return path, string.Template(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HarnessError(f"no manifest template {path}; there are: {', '.join(template_names())}") from None


def placeholders(name: str) -> set[str]:
    """The placeholders template ``name`` needs values for."""
    return set(_template(name)[1].get_identifiers())


def render(name: str, values: Mapping[str, str]) -> list[dict[str, Any]]:
    """The objects of ``clusters/manifests/<name>.yaml`` with ``values`` substituted, empty documents dropped."""
    path, template = _template(name)
    service_type = values.get("SERVICE_TYPE")
    if service_type is not None and service_type not in SERVICE_TYPES:
        raise HarnessError(f"SERVICE_TYPE must be one of {', '.join(SERVICE_TYPES)}, not {service_type!r}")
    try:
        text = template.substitute(values)
    except KeyError as exc:
        raise HarnessError(f"{path} needs a value for placeholder ${{{exc.args[0]}}}") from None
    except ValueError as exc:  # a lone $ or $<not an identifier>: write $$ for a literal $
        raise HarnessError(f"{path}: {exc} (write $$ for a literal $)") from None
    try:
        docs = [d for d in yaml.safe_load_all(text) if d]
    except yaml.YAMLError as exc:
        raise HarnessError(f"{path} is not valid YAML once rendered: {' '.join(str(exc).split())}") from None
    for doc in docs:
        if not isinstance(doc, dict) or not doc.get("apiVersion") or not doc.get("kind"):
            raise HarnessError(f"{path}: every document must be a Kubernetes object with apiVersion and kind")
        _drop_cluster_ip_node_ports(doc)
    return docs


def _drop_cluster_ip_node_ports(doc: dict[str, Any]) -> None:
    spec = doc.get("spec") or {}
    if doc["kind"] == "Service" and spec.get("type", "ClusterIP") == "ClusterIP":
        for port in spec.get("ports") or []:
            port.pop("nodePort", None)


def _dynamic(api_client: client.ApiClient, cache_dir: str) -> DynamicClient:
    # A discovery cache of this call's own: the default one is a file shared by every process on the machine.
    return DynamicClient(api_client, cache_file=str(Path(cache_dir) / "discovery.json"))


def _resource(dyn: DynamicClient, api_version: str, kind: str) -> Resource:
    try:
        found: Resource = dyn.resources.get(api_version=api_version, kind=kind)
    except ResourceNotFoundError:
        raise HarnessError(f"the cluster serves no {kind} in {api_version}") from None
    return found


def _identify(doc: Mapping[str, Any], resource: Resource) -> AppliedObject:
    meta = doc.get("metadata") or {}
    name, namespace = meta.get("name") or "", meta.get("namespace") or ""
    if not name:
        raise HarnessError(f"a {doc['kind']} without metadata.name cannot be applied")
    if resource.namespaced and not namespace:
        raise HarnessError(f"{doc['kind']} {name} has no metadata.namespace")
    return AppliedObject(api_version=str(doc["apiVersion"]), kind=str(doc["kind"]),
                         namespace=namespace if resource.namespaced else "", name=name)


def apply(api_client: client.ApiClient, docs: Sequence[Mapping[str, Any]], *,
          field_manager: str = FIELD_MANAGER) -> list[AppliedObject]:
    """Create or update each object, in order, with server-side apply (``field_manager`` owns the fields it
    sets; conflicts with other managers are forced). Idempotent. Returns the objects in the order applied."""
    applied: list[AppliedObject] = []
    with tempfile.TemporaryDirectory(prefix="mlchaos-discovery-") as cache_dir:
        dyn = _dynamic(api_client, cache_dir)
        for doc in docs:
            resource = _resource(dyn, str(doc["apiVersion"]), str(doc["kind"]))
            obj = _identify(doc, resource)
            try:
                dyn.server_side_apply(resource, body=dict(doc), name=obj.name, namespace=obj.namespace or None,
                                      field_manager=field_manager, force_conflicts=True)
            except client.ApiException as exc:
                raise HarnessError(f"cannot apply {obj}: {_reason(exc)}") from None
            applied.append(obj)
    return applied


def delete(api_client: client.ApiClient, objects: Iterable[AppliedObject]) -> None:
    """Delete ``objects`` in reverse order (background propagation); ones already gone are skipped."""
    with tempfile.TemporaryDirectory(prefix="mlchaos-discovery-") as cache_dir:
        dyn = _dynamic(api_client, cache_dir)
        for obj in reversed(list(objects)):
            resource = _resource(dyn, obj.api_version, obj.kind)
            try:
                dyn.delete(resource, name=obj.name, namespace=obj.namespace or None,
                           propagation_policy="Background")
            except NotFoundError:
                continue
            except client.ApiException as exc:
                raise HarnessError(f"cannot delete {obj}: {_reason(exc)}") from None


def _reason(exc: client.ApiException) -> str:
    """The API server's message (a Status object's ``message``), else the HTTP reason, on one line."""
    message = ""
    body = getattr(exc, "body", None)
    if body:
        try:
            status = yaml.safe_load(body)
            message = str(status.get("message", "")) if isinstance(status, dict) else ""
        except yaml.YAMLError:
            message = ""
    return " ".join((message or f"{exc.status} {exc.reason}").split())
