"""The permissions a run needs (``mlchaos preflight``): the rules per mode, the RBAC that grants them, and the
check against the embedded cluster's real API server (RBAC mode), as the admin and as an impersonated user
who is granted nothing, or exactly the namespace-only rules."""

from __future__ import annotations

import argparse
import io
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from harness.cluster.embedded.cluster import EmbeddedCluster
from harness.cluster.embedded.control_plane import CONTEXT_NAME
from harness.cluster.kube import permissions, preflight_cli
from harness.cluster.kube.permissions import (
    BASE_RULES,
    CLUSTER_SCOPED_RULES,
    EXISTING_PRIORITY_CLASS_RULES,
    HEAL_RULES,
    NODE_FAULT_RULES,
    Missing,
    PreflightReport,
    Rule,
    check,
    describe_rules,
    required_rules,
    role_manifests,
)
from harness.errors import HarnessError, ServiceError

MODES = [(False, False), (True, False), (False, True), (True, True)]
_RBAC = "rbac.authorization.k8s.io"


def _keys(rules: Any) -> set[tuple[str, str, str, str]]:
    """(group, resource[/subresource], verb, name) of Rules."""
    return {(r.group, r.resource + (f"/{r.subresource}" if r.subresource else ""), r.verb, r.name) for r in rules}


def _granted(role: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    """The same keys, from a Role's or ClusterRole's PolicyRules."""
    return {(g, res, v, n) for p in role["rules"] for g in p["apiGroups"] for res in p["resources"]
            for v in p["verbs"] for n in (p.get("resourceNames") or [""])}


# --- the rules, without a cluster ----------------------------------------------------


def test_each_mode_adds_its_own_rules_to_the_base() -> None:
    only_ns = required_rules(allow_cluster_scoped=False, allow_node_faults=False)
    scoped = required_rules(allow_cluster_scoped=True, allow_node_faults=False)
    nodes = required_rules(allow_cluster_scoped=False, allow_node_faults=True)
    for rules in (only_ns, scoped, nodes):
        assert len(set(rules)) == len(rules), "a rule is listed twice"
        assert set(BASE_RULES) <= set(rules)
    assert ("scheduling.k8s.io", "priorityclasses", "get", "") in _keys(only_ns)
    assert not {"create", "delete"} & {r.verb for r in only_ns if r.resource == "priorityclasses"}
    configmaps = {r for r in scoped if r.resource == "configmaps"}
    assert set(scoped) - set(BASE_RULES) - configmaps == set(CLUSTER_SCOPED_RULES)
    assert set(nodes) - set(only_ns) == set(NODE_FAULT_RULES)
    assert ("", "pods/eviction", "create", "") in _keys(nodes)
    assert ("", "configmaps", "get", "mlchaos-services") in _keys(only_ns)
    without = required_rules(allow_cluster_scoped=False, allow_node_faults=False, read_advertised_services=False)
    assert set(only_ns) - set(without) == {r for r in only_ns if r.resource == "configmaps"}
    assert next(r for r in only_ns if r.resource == "configmaps").namespace == "kube-public"


def test_the_collector_and_heartbeat_calls_are_covered() -> None:
    base = _keys(BASE_RULES)
    for key in [("", "pods", "watch", ""), ("", "pods", "list", ""), ("batch", "jobs", "watch", ""),
                ("batch", "jobs", "list", ""), ("", "pods/log", "get", ""), ("", "namespaces", "patch", ""),
                ("", "namespaces", "create", ""), ("", "namespaces", "delete", ""), ("", "nodes", "list", "")]:
        assert key in base, key
    assert all(not r.namespaced for r in HEAL_RULES)
    assert all(r.why for r in (*BASE_RULES, *CLUSTER_SCOPED_RULES, *NODE_FAULT_RULES, *HEAL_RULES,
                               *EXISTING_PRIORITY_CLASS_RULES))


def test_describe_rules_says_verb_resource_where_and_why() -> None:
    lines = describe_rules(required_rules(allow_cluster_scoped=False, allow_node_faults=True))
    assert "create jobs.batch in the run's namespace: each pipeline step is a Job" in lines
    assert any(line.startswith("create namespaces cluster-wide: ") for line in lines)
    assert any(line.startswith("get priorityclasses.scheduling.k8s.io cluster-wide: ") for line in lines)
    assert any(line.startswith("create pods/eviction in the run's namespace: ") for line in lines)
    assert any(line.startswith("get configmaps named mlchaos-services in namespace kube-public: ") for line in lines)
    assert all("\n" not in line for line in lines)


@pytest.mark.parametrize(("allow_cluster_scoped", "allow_node_faults"), MODES)
def test_role_manifests_split_cluster_scoped_from_namespaced_rules(allow_cluster_scoped: bool,
                                                                   allow_node_faults: bool) -> None:
    rules = required_rules(allow_cluster_scoped=allow_cluster_scoped, allow_node_faults=allow_node_faults)
    docs = role_manifests(rules, namespace="team-ns", name="mlchaos-harness")
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    assert [d["metadata"]["name"] for d in by_kind["ClusterRole"]] == ["mlchaos-harness"]
    assert _granted(by_kind["ClusterRole"][0]) == _keys(r for r in rules if not r.namespaced)
    roles = {d["metadata"]["namespace"]: d for d in by_kind["Role"]}
    assert set(roles) == {"team-ns", "kube-public"}
    assert _granted(roles["team-ns"]) == _keys(r for r in rules if r.namespaced and not r.namespace)
    assert _granted(roles["kube-public"]) == {("", "configmaps", "get", "mlchaos-services")}
    # Every role is followed by its binding, to a placeholder subject.
    assert len(by_kind["RoleBinding"]) == 2 and len(by_kind["ClusterRoleBinding"]) == 1
    for role, binding in zip(docs[::2], docs[1::2], strict=True):
        assert binding["roleRef"] == {"apiGroup": _RBAC, "kind": role["kind"], "name": role["metadata"]["name"]}
        assert binding["metadata"].get("namespace") == role["metadata"].get("namespace")
        assert binding["subjects"] == [{"kind": "User", "apiGroup": _RBAC,
                                        "name": permissions.SUBJECT_PLACEHOLDER}]


def test_without_a_namespace_the_run_rules_go_to_a_cluster_role_for_every_namespace() -> None:
    rules = required_rules(allow_cluster_scoped=False, allow_node_faults=False)
    docs = role_manifests(rules, namespace=None, name="h",
                          subject={"kind": "Group", "apiGroup": _RBAC, "name": "ci"})
    cluster_roles = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ClusterRole"}
    assert set(cluster_roles) == {"h", "h-namespaced"}
    assert _granted(cluster_roles["h-namespaced"]) == _keys(r for r in rules if r.namespaced and not r.namespace)
    assert [d["metadata"]["namespace"] for d in docs if d["kind"] == "Role"] == ["kube-public"]
    assert {d["subjects"][0]["name"] for d in docs if d["kind"].endswith("Binding")} == {"ci"}


def test_print_rbac_is_yaml_kubectl_applies_and_connects_to_nothing(tmp_path: Path) -> None:
    out = io.StringIO()
    args = _args("--context", "nowhere", "--kubeconfig", str(tmp_path / "absent"), "--allow-node-faults",
                 "--print-rbac", "--subject", "ServiceAccount:ci/mlchaos")
    assert args.func(args, out=out) == 0
    docs = list(yaml.safe_load_all(out.getvalue()))
    assert [d["kind"] for d in docs] == ["ClusterRole", "ClusterRoleBinding", "ClusterRole", "ClusterRoleBinding",
                                         "Role", "RoleBinding"]
    assert docs[1]["subjects"] == [{"kind": "ServiceAccount", "name": "mlchaos", "namespace": "ci"}]
    assert ("", "pods/eviction", "create", "") in _granted(docs[2])
    assert "#   patch nodes cluster-wide: --allow-node-faults" in out.getvalue()


def test_a_bad_subject_is_one_line() -> None:
    with pytest.raises(HarnessError, match="must be User:NAME"):
        preflight_cli.parse_subject("alice")
    assert preflight_cli.parse_subject("User:alice") == {"kind": "User", "apiGroup": _RBAC, "name": "alice"}


def test_the_handler_lists_what_is_missing_and_how_to_grant_it(monkeypatch: pytest.MonkeyPatch) -> None:
    rules = required_rules(allow_cluster_scoped=False, allow_node_faults=True)

    def fake(kubeconfig: Path, context: str | None, **kwargs: Any) -> PreflightReport:
        assert kwargs["allow_node_faults"] and not kwargs["allow_cluster_scoped"]
        return PreflightReport(context=str(context), user="ci", server_version="v1.29.1", rules=rules,
                               missing=tuple(Missing(rule=r, namespace="") for r in NODE_FAULT_RULES))

    monkeypatch.setattr(preflight_cli, "preflight", fake)
    out = io.StringIO()
    args = _args("--context", "staging", "--kubeconfig", "kc", "--allow-node-faults")
    assert args.func(args, out=out) == 1
    lines = out.getvalue().splitlines()
    assert lines[0] == (f"preflight: context staging (user ci, Kubernetes v1.29.1): 3 of {len(rules)} "
                        "permissions missing:")
    assert lines[1:4] == [f"  missing: {line}" for line in describe_rules(NODE_FAULT_RULES)]
    assert len(lines) == 5
    assert ("mlchaos preflight --context staging --kubeconfig kc --allow-node-faults --print-rbac --subject "
            "User:NAME | kubectl apply -f -") in lines[4]


# --- against the embedded cluster ------------------------------------------------------


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mlchaos")
    preflight_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["preflight", *argv])


@pytest.fixture
def admin(embedded: EmbeddedCluster) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=str(embedded.kubeconfig))
    yield api
    api.close()


@pytest.mark.parametrize(("allow_cluster_scoped", "allow_node_faults"), MODES)
def test_the_admin_has_every_permission_in_every_mode(admin: client.ApiClient, allow_cluster_scoped: bool,
                                                      allow_node_faults: bool) -> None:
    rules = required_rules(allow_cluster_scoped=allow_cluster_scoped, allow_node_faults=allow_node_faults)
    assert check(admin, namespace="mlchaos-notyet", rules=rules) == []
    assert check(admin, namespace="mlchaos-notyet", rules=HEAL_RULES) == []


def test_preflight_reports_context_user_and_version(embedded: EmbeddedCluster) -> None:
    report = permissions.preflight(embedded.kubeconfig, None, namespace="mlchaos-preflight-test",
                                   allow_cluster_scoped=True, allow_node_faults=True)
    assert report.ok and report.missing == ()
    assert (report.context, report.user) == (CONTEXT_NAME, CONTEXT_NAME)
    assert report.server_version.startswith("v1.")
    assert report.rules == required_rules(allow_cluster_scoped=True, allow_node_faults=True)


@pytest.fixture
def stranger(embedded: EmbeddedCluster) -> Iterator[tuple[str, client.ApiClient]]:
    """A client of a user no RBAC rule names, through the admin's impersonation."""
    user = f"mlchaos-test-user-{uuid.uuid4().hex[:8]}"
    api = config.new_client_from_config(config_file=str(embedded.kubeconfig))
    api.set_default_header("Impersonate-User", user)
    api.set_default_header("Impersonate-Group", "system:authenticated")
    yield user, api
    api.close()


def test_a_user_granted_nothing_misses_everything(stranger: tuple[str, client.ApiClient]) -> None:
    _, api = stranger
    for allow_cluster_scoped, allow_node_faults in MODES:
        rules = required_rules(allow_cluster_scoped=allow_cluster_scoped, allow_node_faults=allow_node_faults)
        missing = check(api, namespace="mlchaos-notyet", rules=rules)
        assert [m.rule for m in missing] == list(rules)
        assert {m.namespace for m in missing if m.rule.namespaced and not m.rule.namespace} == {"mlchaos-notyet"}
        assert {m.namespace for m in missing if not m.rule.namespaced} == {""}
        assert {m.namespace for m in missing if m.rule.namespace} == {"kube-public"}


def _apply(api: client.ApiClient, docs: list[dict[str, Any]]) -> list[tuple[str, str, str | None]]:
    rbac = client.RbacAuthorizationV1Api(api)
    made: list[tuple[str, str, str | None]] = []
    create = {"ClusterRole": lambda ns, d: rbac.create_cluster_role(d),
              "ClusterRoleBinding": lambda ns, d: rbac.create_cluster_role_binding(d),
              "Role": rbac.create_namespaced_role, "RoleBinding": rbac.create_namespaced_role_binding}
    for doc in docs:
        namespace = doc["metadata"].get("namespace")
        create[doc["kind"]](namespace, doc)
        made.append((doc["kind"], doc["metadata"]["name"], namespace))
    return made


def _delete(api: client.ApiClient, made: list[tuple[str, str, str | None]]) -> None:
    rbac = client.RbacAuthorizationV1Api(api)
    delete = {"ClusterRole": lambda name, ns: rbac.delete_cluster_role(name),
              "ClusterRoleBinding": lambda name, ns: rbac.delete_cluster_role_binding(name),
              "Role": rbac.delete_namespaced_role, "RoleBinding": rbac.delete_namespaced_role_binding}
    for kind, name, namespace in reversed(made):
        try:
            delete[kind](name, namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise


def _eventually(probe: Any, expected: Any, *, timeout: float = 15.0) -> Any:
    """RBAC reaches the authorizer through a watch: allow it a moment."""
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got == expected or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def test_a_user_granted_the_namespace_only_rules_misses_exactly_the_node_fault_ones(
        admin: client.ApiClient, stranger: tuple[str, client.ApiClient]) -> None:
    user, api = stranger
    tag = uuid.uuid4().hex[:8]
    namespace = f"t-perm-{tag}"  # no harness labels: sweep must not take it for a dead run's
    core = client.CoreV1Api(admin)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    granted = required_rules(allow_cluster_scoped=False, allow_node_faults=False)
    made: list[tuple[str, str, str | None]] = []
    try:
        made = _apply(admin, role_manifests(granted, namespace=namespace, name=f"mlchaos-test-{tag}",
                                            subject={"kind": "User", "apiGroup": _RBAC, "name": user}))
        assert {kind for kind, _, _ in made} == {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}

        def missing(*, allow_cluster_scoped: bool, allow_node_faults: bool) -> list[Rule]:
            rules = required_rules(allow_cluster_scoped=allow_cluster_scoped, allow_node_faults=allow_node_faults)
            return [m.rule for m in check(api, namespace=namespace, rules=rules)]

        assert _eventually(lambda: missing(allow_cluster_scoped=False, allow_node_faults=False), []) == []
        assert missing(allow_cluster_scoped=False, allow_node_faults=True) == list(NODE_FAULT_RULES)
        assert missing(allow_cluster_scoped=True, allow_node_faults=False) == list(CLUSTER_SCOPED_RULES)
        # The Role holds in its namespace only: in a run's new namespace the namespaced rules are missing.
        elsewhere = [m.rule for m in check(api, namespace=f"mlchaos-{tag}", rules=granted)]
        assert elsewhere == [r for r in granted if r.namespaced and not r.namespace]
    finally:
        _delete(admin, made)
        core.delete_namespace(namespace)
    assert _eventually(lambda: len(check(api, namespace=namespace, rules=granted)), len(granted)) == len(granted)


def _unreachable_kubeconfig(path: Path) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "gone",
        "clusters": [{"name": "gone", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "someone", "user": {"token": "x"}}],
        "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "someone"}}]}))
    return path


def test_an_unreachable_api_server_is_one_line(tmp_path: Path) -> None:
    kubeconfig = _unreachable_kubeconfig(tmp_path / "kubeconfig")
    api = config.new_client_from_config(config_file=str(kubeconfig))
    api.configuration.retries = 0
    with api, pytest.raises(ServiceError, match="cannot reach the API server") as raised:
        check(api, namespace="x", rules=BASE_RULES[:1], timeout=2)
    assert "\n" not in str(raised.value)
    with pytest.raises(ServiceError, match=r"the cluster of context gone .* does not answer") as raised:
        permissions.preflight(kubeconfig, "gone", allow_cluster_scoped=False, allow_node_faults=False)
    assert "\n" not in str(raised.value)


def test_the_cli_on_the_embedded_cluster_says_all_granted(embedded: EmbeddedCluster) -> None:
    for flags in ([], ["--allow-cluster-scoped", "--allow-node-faults"]):
        out = io.StringIO()
        args = _args("--context", CONTEXT_NAME, "--kubeconfig", str(embedded.kubeconfig), *flags)
        assert args.func(args, out=out) == 0
        n = len(required_rules(allow_cluster_scoped=bool(flags), allow_node_faults=bool(flags)))
        line = out.getvalue()
        assert line.startswith(f"preflight: context {CONTEXT_NAME} (user {CONTEXT_NAME}, Kubernetes v1.")
        assert line.endswith(f"): all {n} permissions granted\n") and line.count("\n") == 1


def test_the_cli_reads_kubeconfig_from_the_environment(embedded: EmbeddedCluster,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(embedded.kubeconfig))
    out = io.StringIO()
    args = _args("--context", CONTEXT_NAME)
    assert args.func(args, out=out) == 0


def test_the_cli_with_a_missing_kubeconfig_or_context_is_one_line(embedded: EmbeddedCluster,
                                                                   tmp_path: Path) -> None:
    args = _args("--context", CONTEXT_NAME, "--kubeconfig", str(tmp_path / "nope"))
    with pytest.raises(HarnessError, match=r"kubeconfig .*nope does not exist") as raised:
        args.func(args, out=io.StringIO())
    assert "\n" not in str(raised.value)
    args = _args("--context", "staging", "--kubeconfig", str(embedded.kubeconfig))
    with pytest.raises(HarnessError, match=f"has no context 'staging' \\(it has: {CONTEXT_NAME}\\)"):
        args.func(args, out=io.StringIO())
