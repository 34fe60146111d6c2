"""A container's environment as a kubelet builds it: the image's env, then the container's, downward API resolved."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from typing import Any

from harness.errors import HarnessError

__all__ = ["image_env", "container_env"]

_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['([^']+)'\]$")


def image_env() -> dict[str, str]:
    """The "image" of a process node is this machine and this Python environment: its env,
    with this interpreter's ``bin`` first on PATH so that ``python`` is the harness's."""
    env = dict(os.environ)
    bindir = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join([bindir, env.get("PATH", "/usr/bin:/bin")])
    return env


def _field(pod: Mapping[str, Any], path: str) -> str:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": status.get("podIP") or "127.0.0.1",
        "status.hostIP": status.get("hostIP") or "127.0.0.1",
    }
    if path in simple:
        return str(simple[path] or "")
    match = _SUBSCRIPT.match(path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    raise HarnessError(f"fieldRef {path!r} is not supported by process nodes")


def container_env(pod: Mapping[str, Any], container: Mapping[str, Any]) -> dict[str, str]:
    """``image_env()`` overlaid with the container's ``env`` (``value`` and ``valueFrom.fieldRef``);
    ``$(VAR)`` references to earlier variables are expanded as Kubernetes does."""
    env = image_env()
    for item in container.get("env") or []:
        name = item["name"]
        if item.get("valueFrom"):
            ref = (item["valueFrom"] or {}).get("fieldRef")
            if not ref:
                raise HarnessError(f"env {name}: only fieldRef is supported by process nodes")
            env[name] = _field(pod, ref["fieldPath"])
        else:
            value = str(item.get("value") or "")
            env[name] = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), value)
    return env
