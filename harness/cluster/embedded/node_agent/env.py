"""A container's environment as a kubelet builds it: the image's env, then the container's, downward API resolved."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

__all__ = ["IMAGE_ENV_FILE", "image_env", "container_env", "image_overrides", "write_image_overrides"]

IMAGE_ENV_FILE = "image-env.json"
"""In ``<workdir>/nodes/<node>/``: env the node's "image" adds (an environment-drift fault writes it)."""

_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['([^']+)'\]$")


def image_env() -> dict[str, str]:
    """The "image" of a process node is this machine and this Python environment: its env,
    with this interpreter's ``bin`` first on PATH so that ``python`` is the harness's."""
    env = dict(os.environ)
    bindir = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join([bindir, env.get("PATH", "/usr/bin:/bin")])
    return env


def image_overrides(workdir: Path, node: str) -> dict[str, str]:
    """What ``node``'s image adds to ``image_env()`` now: read at each container start, so a change
    (:func:`write_image_overrides`) reaches the next container started there, as a new image would."""
    path = Path(workdir) / "nodes" / node / IMAGE_ENV_FILE
    try:
        loaded = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise HarnessError(f"the image env of node {node} ({path}) does not load: {exc}") from None
    return {str(k): str(v) for k, v in dict(loaded).items()}


def write_image_overrides(workdir: Path, node: str, env: Mapping[str, str] | None) -> None:
    """Set (None: remove) what ``node``'s image adds; written whole then renamed, so a container never
    reads half of it. Removing a missing file is fine (idempotent)."""
    path = Path(workdir) / "nodes" / node / IMAGE_ENV_FILE
    if env is None:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(dict(env), sort_keys=True))
    partial.replace(path)


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


def container_env(pod: Mapping[str, Any], container: Mapping[str, Any],
                  overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """``image_env()`` with the node image's ``overrides``, overlaid with the container's ``env`` (``value``
    and ``valueFrom.fieldRef``); ``$(VAR)`` references to earlier variables are expanded as Kubernetes does."""
    env = {**image_env(), **(overrides or {})}
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
