"""How a run chooses and may touch its cluster: the ``--cluster`` family of options, shared by the CLI and pytest.

One definition (:data:`ARGUMENTS`) feeds both ``mlchaos run`` (argparse) and
the pytest plugin, so the two never drift. :class:`ClusterOptions` is what the
rest of the harness receives; nothing below the CLI reads ``argparse``.

Safety rules for clusters the harness did not start (``existing``):

- the kubeconfig context must be on the allowlist (``--allow-context`` or
  ``$HARNESS_ALLOWED_CONTEXTS``), checked before anything connects;
- cluster-scoped objects (PriorityClasses) are created only with
  ``--allow-cluster-scoped``;
- node faults (cordon, drain) only with ``--allow-node-faults``, and only on
  nodes matching ``--node-selector``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.cluster.base import PRIORITY_BACKFILL, PRIORITY_DAILY
from harness.errors import HarnessError

__all__ = [
    "ALLOWED_CONTEXTS_ENV",
    "ARGUMENTS",
    "CLUSTER_KINDS",
    "ClusterOptions",
    "Toleration",
    "allowed_contexts",
    "check_context_allowed",
    "options_from",
    "parse_node_selector",
    "parse_toleration",
]

CLUSTER_KINDS = ("embedded", "kind", "existing")
ALLOWED_CONTEXTS_ENV = "HARNESS_ALLOWED_CONTEXTS"


@dataclass(frozen=True)
class Toleration:
    """A pod toleration (``key[=value]:Effect``); an empty value means ``operator: Exists``."""

    key: str
    effect: str
    value: str = ""


@dataclass(frozen=True, kw_only=True)
class ClusterOptions:
    """Where a run goes and what it may touch there. The defaults are the embedded cluster."""

    kind: str = "embedded"
    context: str | None = None
    kubeconfig: Path | None = None
    allow_contexts: tuple[str, ...] = ()
    allow_cluster_scoped: bool = False
    allow_node_faults: bool = False
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    s3_endpoint: str | None = None
    s3_direct_endpoint: str | None = None
    s3_proxy_control_url: str | None = None
    prometheus_url: str | None = None
    priority_class_daily: str = PRIORITY_DAILY
    priority_class_backfill: str = PRIORITY_BACKFILL
    kind_name: str | None = None
    keep_cluster: bool = False
    image: str | None = None
    services_configmap: str = "kube-public/mlchaos-services"

    def __post_init__(self) -> None:
        if self.kind not in CLUSTER_KINDS:
            raise HarnessError(f"unknown cluster {self.kind!r}; choose one of {', '.join(CLUSTER_KINDS)}")
        if self.kind == "existing" and not self.context:
            raise HarnessError("--cluster existing needs --context NAME (a context of your kubeconfig; "
                               "list them with: kubectl config get-contexts)")
        if self.services_configmap.count("/") != 1:
            raise HarnessError(f"--services-configmap {self.services_configmap!r} must be NAMESPACE/NAME")

    def resolved_kubeconfig(self) -> Path:
        """``--kubeconfig``, else the first file of ``$KUBECONFIG``, else ``~/.kube/config``."""
        if self.kubeconfig is not None:
            return self.kubeconfig
        env = os.environ.get("KUBECONFIG", "")
        first = next((p for p in env.split(os.pathsep) if p), "")
        return Path(first) if first else Path.home() / ".kube" / "config"


def allowed_contexts(options: ClusterOptions) -> frozenset[str]:
    """The contexts a run may use: ``--allow-context`` names and ``$HARNESS_ALLOWED_CONTEXTS``."""
    from_env = (c.strip() for c in os.environ.get(ALLOWED_CONTEXTS_ENV, "").split(","))
    return frozenset(options.allow_contexts) | {c for c in from_env if c}


def check_context_allowed(options: ClusterOptions) -> str:
    """The context to use; a HarnessError when it is not on the allowlist. Connects to nothing."""
    context = options.context or ""
    allowed = allowed_contexts(options)
    if context not in allowed:
        listed = ", ".join(sorted(allowed)) or "none"
        raise HarnessError(
            f"context {context!r} is not on the allowlist (allowed: {listed}); nothing was created. "
            f"If this cluster may be disrupted, pass --allow-context {context} or set {ALLOWED_CONTEXTS_ENV}={context}")
    return context


def parse_node_selector(text: str) -> dict[str, str]:
    """``k=v,k2=v2`` (equality only, as a Pod's ``nodeSelector``); "" is no selector."""
    selector: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise HarnessError(f"--node-selector {text!r}: {part!r} is not KEY=VALUE; "
                               "give labels as key=value,key2=value2")
        selector[key.strip()] = value.strip()
    return selector


_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def parse_toleration(text: str) -> Toleration:
    """``key[=value]:Effect``, as ``kubectl taint`` writes a taint."""
    head, sep, effect = text.rpartition(":")
    key, _, value = head.partition("=")
    if not sep or not key or effect not in _EFFECTS:
        raise HarnessError(f"--toleration {text!r} must be KEY[=VALUE]:EFFECT with EFFECT one of "
                           f"{', '.join(_EFFECTS)} (for example nvidia.com/gpu:NoSchedule)")
    return Toleration(key=key, value=value, effect=effect)


@dataclass(frozen=True)
class Argument:
    """One command-line option, declared once for argparse and pytest."""

    flags: tuple[str, ...]
    dest: str
    help: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def add_to(self, add: Callable[..., object], *, dest_prefix: str = "") -> None:
        """Declare it with ``add`` (argparse's ``add_argument`` or pytest's ``addoption``)."""
        add(*self.flags, dest=dest_prefix + self.dest, help=self.help, **self.kwargs)


ARGUMENTS: tuple[Argument, ...] = (
    Argument(("--cluster",), "cluster", "where experiments run: embedded (a local Kubernetes control plane with "
             "process nodes, the default), kind, or existing (a kubeconfig context)",
             {"choices": CLUSTER_KINDS, "default": "embedded"}),
    Argument(("--context",), "context", "kubeconfig context of the existing cluster (must be allowed)",
             {"default": None}),
    Argument(("--kubeconfig",), "kubeconfig", "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)",
             {"default": None}),
    Argument(("--allow-context",), "allow_context", f"allow this context (repeatable; also ${ALLOWED_CONTEXTS_ENV}, "
             "comma-separated)", {"action": "append", "default": []}),
    Argument(("--allow-cluster-scoped",), "allow_cluster_scoped",
             "let the run create (and remove) cluster-scoped objects: its PriorityClasses", {"action": "store_true"}),
    Argument(("--allow-node-faults",), "allow_node_faults",
             "let experiments cordon and drain nodes (only those matching --node-selector)", {"action": "store_true"}),
    Argument(("--node-selector",), "node_selector", "KEY=VALUE[,...]: where pipeline pods run and the only nodes "
             "node faults may touch", {"default": ""}),
    Argument(("--toleration",), "toleration", "KEY[=VALUE]:EFFECT tolerated by pipeline pods (repeatable)",
             {"action": "append", "default": []}),
    Argument(("--s3-endpoint",), "s3_endpoint", "S3 endpoint the pipeline's pods use, instead of the advertised one",
             {"default": None}),
    Argument(("--s3-direct-endpoint",), "s3_direct_endpoint",
             "S3 endpoint the harness reads the store through (default: --s3-endpoint)", {"default": None}),
    Argument(("--s3-proxy-control-url",), "s3_proxy_control_url",
             "control API of a fault proxy in front of S3 (network and storage faults need one)", {"default": None}),
    Argument(("--prometheus-url",), "prometheus_url", "Prometheus that scrapes the pipeline's pods",
             {"default": None}),
    Argument(("--priority-class-daily",), "priority_class_daily", "PriorityClass of daily runs",
             {"default": PRIORITY_DAILY}),
    Argument(("--priority-class-backfill",), "priority_class_backfill", "PriorityClass of backfill runs",
             {"default": PRIORITY_BACKFILL}),
    Argument(("--services-configmap",), "services_configmap", "NAMESPACE/NAME of the ConfigMap advertising the "
             "cluster's S3, Prometheus and fault proxy", {"default": "kube-public/mlchaos-services"}),
    Argument(("--kind-name",), "kind_name", "reuse this kind cluster instead of creating one", {"default": None}),
    Argument(("--image",), "image", "pipeline image (default: built from clusters/image and tagged with the commit)",
             {"default": None}),
)


def options_from(values: Mapping[str, Any], *, keep_cluster: bool = False) -> ClusterOptions:
    """``ClusterOptions`` from parsed ``ARGUMENTS`` (keyed by their ``dest``)."""
    kubeconfig = values.get("kubeconfig")
    return ClusterOptions(
        kind=values.get("cluster") or "embedded",
        context=values.get("context"),
        kubeconfig=Path(kubeconfig) if kubeconfig else None,
        allow_contexts=tuple(values.get("allow_context") or ()),
        allow_cluster_scoped=bool(values.get("allow_cluster_scoped")),
        allow_node_faults=bool(values.get("allow_node_faults")),
        node_selector=parse_node_selector(values.get("node_selector") or ""),
        tolerations=tuple(parse_toleration(t) for t in values.get("toleration") or ()),
        s3_endpoint=values.get("s3_endpoint"),
        s3_direct_endpoint=values.get("s3_direct_endpoint"),
        s3_proxy_control_url=values.get("s3_proxy_control_url"),
        prometheus_url=values.get("prometheus_url"),
        priority_class_daily=values.get("priority_class_daily") or PRIORITY_DAILY,
        priority_class_backfill=values.get("priority_class_backfill") or PRIORITY_BACKFILL,
        services_configmap=values.get("services_configmap") or "kube-public/mlchaos-services",
        kind_name=values.get("kind_name"),
        keep_cluster=keep_cluster,
        image=values.get("image"),
    )
