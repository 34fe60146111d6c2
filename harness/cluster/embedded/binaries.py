"""Where the embedded cluster's binaries are: the cached control-plane build and Debian's etcd."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ServiceError

__all__ = ["KUBERNETES_VERSION", "ControlPlaneBinaries", "cache_root", "find_binaries"]

KUBERNETES_VERSION = "v1.20.2"
"""The version built from Debian bookworm's ``kubernetes`` source package (1.20.5+really1.20.2)."""

_BUILD_HINT = "build them once with `make setup` (or: bash clusters/embedded/build-kubernetes.sh)"


@dataclass(frozen=True, kw_only=True)
class ControlPlaneBinaries:
    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    version: str


def cache_root() -> Path:
    """``$HARNESS_KUBERNETES_CACHE``, else ``${XDG_CACHE_HOME:-~/.cache}/ml-chaos-harness/kubernetes``."""
    explicit = os.environ.get("HARNESS_KUBERNETES_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ml-chaos-harness" / "kubernetes"


def find_binaries(version: str = KUBERNETES_VERSION) -> ControlPlaneBinaries:
    """The binaries, or a ServiceError naming the missing one and how to get it."""
    bin_dir = cache_root() / version / "bin"
    found: dict[str, Path] = {}
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        path = bin_dir / name
        if not os.access(path, os.X_OK):
            raise ServiceError(f"{name} {version} is not in {bin_dir}; {_BUILD_HINT}")
        found[name] = path
    etcd = shutil.which("etcd")
    if etcd is None:
        raise ServiceError("the etcd binary is not on PATH; install it with: apt-get install -y etcd-server")
    return ControlPlaneBinaries(
        etcd=Path(etcd),
        kube_apiserver=found["kube-apiserver"],
        kube_controller_manager=found["kube-controller-manager"],
        kube_scheduler=found["kube-scheduler"],
        version=version,
    )
