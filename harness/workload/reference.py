"""The reference pipeline's adapter: where its declaration lies. The only module of the
harness that names the reference pipeline; it is the default workload."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from harness.errors import HarnessError
from harness.workload.declaration import DeclaredWorkload, load_workload

PACKAGE = "reference_pipeline"


def reference_declaration() -> Path:
    """The path of the reference pipeline's ``pipeline.yaml`` (found without importing the package)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise HarnessError(f"the {PACKAGE} package is not installed; run make setup, or pass --pipeline FILE")
    return Path(spec.origin).parent / "pipeline.yaml"


def reference_workload() -> DeclaredWorkload:
    return load_workload(reference_declaration())
