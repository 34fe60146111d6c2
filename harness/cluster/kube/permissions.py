"""The RBAC permissions a run needs on a cluster, checked before it starts (``mlchaos preflight``).

The rules are exactly the Kubernetes API calls of :mod:`harness.cluster.kube.backend`
(and its :mod:`~harness.cluster.kube.pod_events` collector and
:mod:`~harness.cluster.kube.heartbeat`), of :mod:`harness.cluster.kube.advertised`
and, for ``heal --context``, of :mod:`harness.cluster.kube.sweep` and
:mod:`harness.cluster.kube.undo_kinds`. Keep them in step when those modules
change. Two unauthenticated-style reads are not listed: ``GET /version`` and
``GET /apis`` (the Eviction API version), which Kubernetes' default
``system:public-info-viewer`` and ``system:discovery`` roles grant every
authenticated user.

:func:`check` asks the API server with one SelfSubjectAccessReview per rule, as
the identity of the kubeconfig's context; nothing persistent is created. The
run's namespace (``mlchaos-<run>``) does not exist yet at preflight, which is
what a real run meets too: it creates that namespace, so only grants that hold
in *every* namespace (a ClusterRoleBinding) reach it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from harness.errors import HarnessError, ServiceError

__all__ = [
    "ADVERTISED_SERVICES",
    "BASE_RULES",
    "CLUSTER_SCOPED_RULES",
    "EXISTING_PRIORITY_CLASS_RULES",
    "HEAL_RULES",
    "NODE_FAULT_RULES",
    "PREFLIGHT_NAMESPACE",
    "Missing",
    "PreflightReport",
    "Rule",
    "check",
    "describe_rule",
    "describe_rules",
    "heal_rules",
    "preflight",
    "required_rules",
    "role_manifests",
]

ADVERTISED_SERVICES = "kube-public/mlchaos-services"
PREFLIGHT_NAMESPACE = "mlchaos-preflight"
"""Where :func:`preflight` evaluates the run's namespaced rules: a name of the runs' pattern that no run uses."""

_RBAC = "rbac.authorization.k8s.io"
_PART_OF = {"app.kubernetes.io/part-of": "ml-chaos-harness"}
SUBJECT_PLACEHOLDER = "FILL-IN-THE-HARNESS-IDENTITY"


@dataclass(frozen=True)
class Rule:
    """One permission: ``verb`` on ``resource`` (``subresource``) of API ``group`` ("" is the core group).

    ``namespaced`` rules apply in the run's namespace, or in ``namespace`` when that is given (a fixed one,
    such as ``kube-public``); ``name`` limits the rule to one object. ``why`` says which call needs it."""

    verb: str
    resource: str
    group: str = ""
    subresource: str = ""
    namespaced: bool = True
    why: str = ""
    namespace: str = ""
    name: str = ""

    @property
    def qualified(self) -> str:
        """``pods/eviction``, ``jobs.batch``, ``priorityclasses.scheduling.k8s.io``: as ``kubectl auth can-i``
        takes it."""
        resource = self.resource + (f".{self.group}" if self.group else "")
        return resource + (f"/{self.subresource}" if self.subresource else "")


def _ns(verb: str, resource: str, why: str, *, group: str = "", subresource: str = "") -> Rule:
    return Rule(verb=verb, resource=resource, group=group, subresource=subresource, namespaced=True, why=why)


def _cluster(verb: str, resource: str, why: str, *, group: str = "") -> Rule:
    return Rule(verb=verb, resource=resource, group=group, namespaced=False, why=why)


BASE_RULES: tuple[Rule, ...] = (
    _cluster("create", "namespaces", "each run works in a namespace of its own, mlchaos-<run>"),
    _cluster("patch", "namespaces", "the run's heartbeat annotation on its namespace (heal keeps live runs)"),
    _cluster("delete", "namespaces", "the run removes its namespace when it ends"),
    _cluster("list", "nodes", "the cluster_ready probe and the node list of reports"),
    _ns("create", "resourcequotas", "the quota that queues backfill pods"),
    _ns("get", "resourcequotas", "waiting until the quota controller has initialised that quota"),
    _ns("create", "jobs", "each pipeline step is a Job", group="batch"),
    _ns("get", "jobs", "job status", group="batch"),
    _ns("list", "jobs", "the event collector's watch of the run's Jobs", group="batch"),
    _ns("watch", "jobs", "the event collector's watch of the run's Jobs", group="batch"),
    _ns("delete", "jobs", "removing a Job (and its pods)", group="batch"),
    _ns("list", "pods", "the event collector's watch of the run's pods, pod listings"),
    _ns("watch", "pods", "the event collector's watch of the run's pods"),
    _ns("delete", "pods", "the pod-delete fault, removing a Job's pods"),
    _ns("get", "pods", "the pipeline's event log: each container's log, followed", subresource="log"),
)
"""What every run needs, whatever it is allowed."""

EXISTING_PRIORITY_CLASS_RULES: tuple[Rule, ...] = (
    _cluster("get", "priorityclasses", "without --allow-cluster-scoped the run checks its PriorityClasses exist",
             group="scheduling.k8s.io"),
)
"""Namespace-only runs (no ``--allow-cluster-scoped``): the PriorityClasses must exist already."""

CLUSTER_SCOPED_RULES: tuple[Rule, ...] = (
    _cluster("create", "priorityclasses", "--allow-cluster-scoped: the run creates its PriorityClasses",
             group="scheduling.k8s.io"),
    _cluster("delete", "priorityclasses", "--allow-cluster-scoped: the run removes the PriorityClasses it created",
             group="scheduling.k8s.io"),
    _cluster("list", "namespaces", "--allow-cluster-scoped: a created PriorityClass stays while other runs live"),
)
"""``--allow-cluster-scoped``, instead of :data:`EXISTING_PRIORITY_CLASS_RULES`."""

NODE_FAULT_RULES: tuple[Rule, ...] = (
    _cluster("get", "nodes", "--allow-node-faults: checking a node matches --node-selector before touching it"),
    _cluster("patch", "nodes", "--allow-node-faults: cordon and uncordon (node-drain)"),
    _ns("create", "pods", "--allow-node-faults: node-drain evicts the run's pods (Eviction API)",
        subresource="eviction"),
)
"""``--allow-node-faults`` (``list nodes`` is in :data:`BASE_RULES`)."""

HEAL_RULES: tuple[Rule, ...] = (
    _cluster("list", "namespaces", "heal finds the namespaces of killed runs by label"),
    _cluster("delete", "namespaces", "heal removes the namespaces of killed runs"),
    _cluster("list", "nodes", "heal finds the nodes killed runs cordoned (annotation)"),
    _cluster("patch", "nodes", "heal uncordons them"),
    _cluster("list", "priorityclasses", "heal finds the PriorityClasses killed runs created (label)",
             group="scheduling.k8s.io"),
    _cluster("delete", "priorityclasses", "heal removes them once no run is alive", group="scheduling.k8s.io"),
)
"""``mlchaos heal`` (the local undo log's records, and ``--context``'s sweep)."""


def _advertised_rule(location: str) -> Rule:
    namespace, _, name = location.partition("/")
    return Rule(verb="get", resource="configmaps", namespaced=True, namespace=namespace, name=name,
                why="the services the cluster advertises (S3, Prometheus, the fault proxy), unless "
                    "--s3-endpoint and --prometheus-url are given")


def required_rules(*, allow_cluster_scoped: bool, allow_node_faults: bool, read_advertised_services: bool = True,
                   services_configmap: str = ADVERTISED_SERVICES) -> tuple[Rule, ...]:
    """The permissions a run with these options needs, each once, in a stable order."""
    rules = [*BASE_RULES, *(CLUSTER_SCOPED_RULES if allow_cluster_scoped else EXISTING_PRIORITY_CLASS_RULES)]
    if allow_node_faults:
        rules += NODE_FAULT_RULES
    if read_advertised_services:
        rules.append(_advertised_rule(services_configmap))
    return _unique(rules)


def heal_rules() -> tuple[Rule, ...]:
    """What ``mlchaos heal --context`` needs in that cluster."""
    return HEAL_RULES


def _unique(rules: Iterable[Rule]) -> tuple[Rule, ...]:
    seen: dict[tuple[str, str, str, str, bool, str, str], Rule] = {}
    for rule in rules:
        seen.setdefault(_key(rule), rule)
    return tuple(seen.values())


def _key(rule: Rule) -> tuple[str, str, str, str, bool, str, str]:
    return (rule.verb, rule.resource, rule.group, rule.subresource, rule.namespaced, rule.namespace, rule.name)


# --- describing and granting ---------------------------------------------------------


def describe_rule(rule: Rule) -> str:
    """``create jobs.batch in the run's namespace: each pipeline step is a Job``."""
    where = ("cluster-wide" if not rule.namespaced
             else f"in namespace {rule.namespace}" if rule.namespace else "in the run's namespace")
    named = f" named {rule.name}" if rule.name else ""
    return f"{rule.verb} {rule.qualified}{named} {where}: {rule.why}"


def describe_rules(rules: Iterable[Rule]) -> list[str]:
    return [describe_rule(r) for r in rules]


def _policy_rules(rules: Iterable[Rule]) -> list[dict[str, Any]]:
    """RBAC PolicyRules: one per (group, resource, object name), with its verbs, in first-seen order."""
    merged: dict[tuple[str, str, str], list[str]] = {}
    for rule in rules:
        resource = rule.resource + (f"/{rule.subresource}" if rule.subresource else "")
        verbs = merged.setdefault((rule.group, resource, rule.name), [])
        if rule.verb not in verbs:
            verbs.append(rule.verb)
    result = []
    for (group, resource, name), verbs in merged.items():
        policy: dict[str, Any] = {"apiGroups": [group], "resources": [resource], "verbs": verbs}
        if name:
            policy["resourceNames"] = [name]
        result.append(policy)
    return result


def _meta(name: str, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = dict(_PART_OF)
    return meta


def _binding(role: dict[str, Any], subject: Mapping[str, str]) -> dict[str, Any]:
    namespace = role["metadata"].get("namespace")
    return {"apiVersion": f"{_RBAC}/v1", "kind": "RoleBinding" if role["kind"] == "Role" else "ClusterRoleBinding",
            "metadata": _meta(role["metadata"]["name"], namespace),
            "roleRef": {"apiGroup": _RBAC, "kind": role["kind"], "name": role["metadata"]["name"]},
            "subjects": [dict(subject)]}


def role_manifests(rules: Sequence[Rule], *, namespace: str | None, name: str,
                   subject: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The RBAC objects that grant ``rules``, each role followed by its binding to ``subject``.

    - a ClusterRole ``name`` holding the cluster-scoped rules;
    - the run's namespaced rules: a Role ``name`` in ``namespace``, or, with ``namespace`` None, a ClusterRole
      ``name-namespaced`` bound cluster-wide, since each run creates a new namespace no Role can be made in ahead;
    - a Role ``name`` in each fixed namespace a rule names (``kube-public`` for the advertised services).

    ``subject`` (``{"kind": "User", "name": ..., "apiGroup": "rbac.authorization.k8s.io"}``, or a Group, or a
    ServiceAccount with its namespace) defaults to a placeholder User the cluster's admin fills in.
    """
    who = dict(subject) if subject else {"kind": "User", "apiGroup": _RBAC, "name": SUBJECT_PLACEHOLDER}
    cluster = [r for r in rules if not r.namespaced]
    in_run = [r for r in rules if r.namespaced and not r.namespace]
    fixed: dict[str, list[Rule]] = {}
    for r in rules:
        if r.namespaced and r.namespace:
            fixed.setdefault(r.namespace, []).append(r)
    roles: list[dict[str, Any]] = []
    if cluster:
        roles.append({"apiVersion": f"{_RBAC}/v1", "kind": "ClusterRole", "metadata": _meta(name),
                      "rules": _policy_rules(cluster)})
    if in_run and namespace is None:
        roles.append({"apiVersion": f"{_RBAC}/v1", "kind": "ClusterRole", "metadata": _meta(f"{name}-namespaced"),
                      "rules": _policy_rules(in_run)})
    elif in_run and namespace is not None:
        both = [*in_run, *fixed.pop(namespace, [])]  # one Role where the run's and a fixed namespace's rules meet
        fixed = {namespace: both, **fixed}
    for ns, ns_rules in fixed.items():
        roles.append({"apiVersion": f"{_RBAC}/v1", "kind": "Role", "metadata": _meta(name, ns),
                      "rules": _policy_rules(ns_rules)})
    manifests: list[dict[str, Any]] = []
    for role in roles:
        manifests += [role, _binding(role, who)]
    return manifests


# --- checking ------------------------------------------------------------------------


@dataclass(frozen=True)
class Missing:
    """``rule`` is not granted; ``namespace`` is where it was asked ("" for cluster-wide), ``reason`` the
    authorizer's word (often empty: no rule matched)."""

    rule: Rule
    namespace: str
    reason: str = ""


def _where(rule: Rule, namespace: str) -> str:
    if not rule.namespaced:
        return ""
    return rule.namespace or namespace


def check(api_client: client.ApiClient, *, namespace: str, rules: Iterable[Rule],
          timeout: float = 10.0) -> list[Missing]:
    """The ``rules`` the client's identity is not granted, asked one SelfSubjectAccessReview each.

    Namespaced rules are asked in ``namespace`` (unless they name their own); it need not exist."""
    api = client.AuthorizationV1Api(api_client)
    missing: list[Missing] = []
    for rule in rules:
        where = _where(rule, namespace)
        attributes = client.V1ResourceAttributes(verb=rule.verb, group=rule.group, resource=rule.resource,
                                                 subresource=rule.subresource or None, namespace=where or None,
                                                 name=rule.name or None)
        review = client.V1SelfSubjectAccessReview(
            api_version="authorization.k8s.io/v1", kind="SelfSubjectAccessReview",
            spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attributes))
        try:
            status = api.create_self_subject_access_review(review, _request_timeout=timeout).status
        except ApiException as exc:
            raise ServiceError(f"cannot ask the API server whether {rule.verb} {rule.qualified} is allowed "
                               f"(SelfSubjectAccessReview): {_api_message(exc)}") from None
        except Exception as exc:  # urllib3's refused, timed out, TLS: one line, not a trace
            raise ServiceError(f"cannot reach the API server to check permissions: {_one_line(exc)}") from None
        if status is None or not status.allowed:
            reason = (status.reason or status.evaluation_error or "") if status is not None else ""
            missing.append(Missing(rule=rule, namespace=where, reason=_one_line(reason)))
    return missing


@dataclass(frozen=True)
class PreflightReport:
    """What :func:`preflight` found: ``missing`` is empty when every one of ``rules`` is granted."""

    context: str
    user: str
    server_version: str
    missing: tuple[Missing, ...]
    rules: tuple[Rule, ...] = field(default=())
    namespace: str = PREFLIGHT_NAMESPACE

    @property
    def ok(self) -> bool:
        return not self.missing


def preflight(kubeconfig: Path, context: str | None, *, namespace: str = PREFLIGHT_NAMESPACE,
              allow_cluster_scoped: bool, allow_node_faults: bool, read_advertised_services: bool = True,
              services_configmap: str = ADVERTISED_SERVICES) -> PreflightReport:
    """Whether ``context`` (None: the kubeconfig's current one) may do what a run with these options does.

    Creates nothing: it reads the server's version and asks SelfSubjectAccessReviews."""
    kubeconfig = Path(kubeconfig)
    if not kubeconfig.is_file():
        raise HarnessError(f"kubeconfig {kubeconfig} does not exist; pass --kubeconfig FILE or set KUBECONFIG")
    try:
        contexts, current = config.list_kube_config_contexts(config_file=str(kubeconfig))
    except Exception as exc:  # YAML, missing keys: whatever the loader raises, one line
        raise HarnessError(f"cannot read kubeconfig {kubeconfig}: {_one_line(exc)}") from None
    wanted = context or (current or {}).get("name", "")
    entry = next((c for c in contexts or [] if c.get("name") == wanted), None)
    if entry is None:
        names = ", ".join(c.get("name", "") for c in contexts or []) or "none"
        raise HarnessError(f"kubeconfig {kubeconfig} has no context {wanted!r} (it has: {names})")
    user = str((entry.get("context") or {}).get("user", ""))
    try:
        api_client = config.new_client_from_config(config_file=str(kubeconfig), context=wanted)
    except Exception as exc:  # bad credentials or certificates: one line
        raise HarnessError(f"cannot load context {wanted} from {kubeconfig}: {_one_line(exc)}") from None
    api_client.configuration.retries = 1
    rules = required_rules(allow_cluster_scoped=allow_cluster_scoped, allow_node_faults=allow_node_faults,
                           read_advertised_services=read_advertised_services, services_configmap=services_configmap)
    with api_client:
        try:
            version = client.VersionApi(api_client).get_code(_request_timeout=10).git_version
        except ApiException as exc:
            raise ServiceError(f"the cluster of context {wanted} refuses GET /version: {_api_message(exc)}") from None
        except Exception as exc:  # urllib3's refused, timed out, TLS: one line
            raise ServiceError(f"the cluster of context {wanted} ({api_client.configuration.host}) does not answer: "
                               f"{_one_line(exc)}") from None
        missing = check(api_client, namespace=namespace, rules=rules)
    return PreflightReport(context=wanted, user=user, server_version=str(version), missing=tuple(missing),
                           rules=rules, namespace=namespace)


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


def _api_message(exc: ApiException) -> str:
    try:
        message = json.loads(exc.body or "").get("message") or exc.reason
    except (TypeError, ValueError, AttributeError):
        message = exc.reason
    return _one_line(f"{exc.status} {message}")
