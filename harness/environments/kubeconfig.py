"""The copy of a cluster's kubeconfig a run keeps (in its report folder) for ``kubectl``."""

from __future__ import annotations

import shutil
from pathlib import Path

__all__ = ["copy_kubeconfig"]


def copy_kubeconfig(source: Path, destination: Path) -> Path:
    """Copy ``source`` to ``destination`` (its folder made as needed), readable by the owner only; returns it."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, destination)
    destination.chmod(0o600)
    return destination
