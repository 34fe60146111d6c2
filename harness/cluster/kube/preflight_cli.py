"""``mlchaos preflight``: may this kubeconfig context do what a run needs? And the RBAC to grant if not.

It connects (no allowlist needed: it creates nothing, only reads the server's
version and asks SelfSubjectAccessReviews) and prints one line when every
permission is granted, else one line per missing permission and how to grant
them. ``--print-rbac`` prints the Roles, ClusterRoles and bindings instead,
for the cluster's admin to apply; it does not connect.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any, TextIO

import yaml

from harness.cluster.kube.permissions import (
    describe_rules,
    preflight,
    required_rules,
    role_manifests,
)
from harness.errors import HarnessError

__all__ = ["ROLE_NAME", "add_parser", "cmd_preflight", "default_kubeconfig", "parse_subject", "print_rbac"]

ROLE_NAME = "mlchaos-harness"
_RBAC = "rbac.authorization.k8s.io"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``preflight`` to ``subparsers`` (what ``ArgumentParser.add_subparsers`` returned)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "preflight", help="check that a kubeconfig context has the permissions a run needs (creates nothing)",
        description="Check, with SelfSubjectAccessReviews, that the identity of a kubeconfig context may do what "
                    "a run with these options does; --print-rbac prints the RBAC a cluster admin grants.")
    parser.add_argument("--context", required=True, help="the kubeconfig context to check")
    parser.add_argument("--kubeconfig", default=None,
                        help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
    parser.add_argument("--allow-cluster-scoped", action="store_true",
                        help="check for a run that may create and delete PriorityClasses")
    parser.add_argument("--allow-node-faults", action="store_true",
                        help="check for a run that may cordon and drain nodes")
    parser.add_argument("--print-rbac", action="store_true",
                        help="print the Role/ClusterRole YAML (with bindings) to grant, and exit; connects to nothing")
    parser.add_argument("--subject", default=None, metavar="KIND:NAME",
                        help="with --print-rbac: whom the bindings name (User:NAME, Group:NAME or "
                             "ServiceAccount:NAMESPACE/NAME); default: a placeholder the admin fills in")
    parser.set_defaults(func=cmd_preflight)
    return parser


def parse_subject(text: str) -> dict[str, str]:
    """``User:alice``, ``Group:ci``, ``ServiceAccount:ci/mlchaos`` as an RBAC subject."""
    kind, sep, name = text.partition(":")
    if sep and name and kind in ("User", "Group"):
        return {"kind": kind, "apiGroup": _RBAC, "name": name}
    if sep and kind == "ServiceAccount" and re.fullmatch(r"[^/\s]+/[^/\s]+", name):
        namespace, _, account = name.partition("/")
        return {"kind": kind, "name": account, "namespace": namespace}
    raise HarnessError(f"--subject {text!r} must be User:NAME, Group:NAME or ServiceAccount:NAMESPACE/NAME")


def default_kubeconfig() -> Path:
    """The first file of ``$KUBECONFIG``, else ``~/.kube/config`` (as kubectl and ``mlchaos run``)."""
    first = next((p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p), "")
    return Path(first) if first else Path.home() / ".kube" / "config"


def _flags(args: argparse.Namespace) -> str:
    flags = [f"--context {shlex.quote(args.context)}"]
    if args.kubeconfig:
        flags.append(f"--kubeconfig {shlex.quote(args.kubeconfig)}")
    if args.allow_cluster_scoped:
        flags.append("--allow-cluster-scoped")
    if args.allow_node_faults:
        flags.append("--allow-node-faults")
    return " ".join(flags)


def print_rbac(args: argparse.Namespace, out: TextIO) -> None:
    rules = required_rules(allow_cluster_scoped=args.allow_cluster_scoped, allow_node_faults=args.allow_node_faults)
    subject = parse_subject(args.subject) if args.subject else None
    out.write(f"# RBAC for ML chaos harness runs: mlchaos preflight {_flags(args)} --print-rbac\n")
    out.write("# Each run creates its own namespace mlchaos-<run>, so the namespaced rules are granted in every\n"
              "# namespace (ClusterRole ...-namespaced with a ClusterRoleBinding).\n")
    if subject is None:
        out.write("# Fill in the bindings' subjects (or pass --subject) before applying.\n")
    out.write("#\n")
    out.writelines(f"#   {line}\n" for line in describe_rules(rules))
    out.write(yaml.safe_dump_all(role_manifests(rules, namespace=None, name=ROLE_NAME, subject=subject),
                                 sort_keys=False, explicit_start=True))


def cmd_preflight(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """0 when every permission is granted (or with --print-rbac), 1 when some are missing."""
    out = out or sys.stdout
    if args.print_rbac:
        print_rbac(args, out)
        return 0
    if args.subject:
        raise HarnessError("--subject names whom the printed bindings grant; use it with --print-rbac")
    kubeconfig = Path(args.kubeconfig) if args.kubeconfig else default_kubeconfig()
    report = preflight(kubeconfig, args.context, allow_cluster_scoped=args.allow_cluster_scoped,
                       allow_node_faults=args.allow_node_faults)
    head = f"preflight: context {report.context} (user {report.user or '?'}, Kubernetes {report.server_version})"
    if report.ok:
        print(f"{head}: all {len(report.rules)} permissions granted", file=out)
        return 0
    print(f"{head}: {len(report.missing)} of {len(report.rules)} permissions missing:", file=out)
    for missing, line in zip(report.missing, describe_rules(m.rule for m in report.missing), strict=True):
        print(f"  missing: {line}" + (f" ({missing.reason})" if missing.reason else ""), file=out)
    print(f"preflight: to grant them, a cluster admin runs: mlchaos preflight {_flags(args)} --print-rbac "
          "--subject User:NAME | kubectl apply -f -  (NAME: the identity this context authenticates as; "
          "or fill in the printed bindings' subjects)", file=out)
    return 1
