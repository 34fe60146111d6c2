"""An experiment as the harness understands it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.checks.registry import CheckSpec
from harness.checks.slo import SloSpec
from harness.workload.role import Workload
from harness.workload.settings import PipelineSettings

EXTENSION_NAME = "harness"


@dataclass(frozen=True, kw_only=True)
class ExperimentSpec:
    """A validated experiment file.

    ``document`` is the Chaos Toolkit experiment itself, handed to chaoslib as
    is (that boundary is chaoslib's untyped dict); everything the harness reads
    from it is parsed into the typed fields.
    """

    path: Path
    name: str  # the file's stem, e.g. "pod-delete"
    title: str
    weight: float
    workload: Workload  # the pipeline under test: --pipeline, else the extension's ``workload``, else the reference
    pipeline: PipelineSettings
    checks: tuple[CheckSpec, ...]
    slos: tuple[SloSpec, ...]
    document: Mapping[str, Any]

    def activity_modules(self) -> frozenset[str]:
        """The Python modules whose functions the experiment's activities (method, rollbacks,
        steady-state probes) call."""
        hypothesis = self.document.get("steady-state-hypothesis") or {}
        activities = [*(self.document.get("method") or []), *(self.document.get("rollbacks") or []),
                      *(hypothesis.get("probes") or [])]
        return frozenset(str(a["provider"]["module"]) for a in activities
                         if isinstance(a, Mapping) and isinstance(a.get("provider"), Mapping)
                         and a["provider"].get("type") == "python" and "module" in a["provider"])
