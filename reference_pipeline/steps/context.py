"""What every step gets."""

from __future__ import annotations

from dataclasses import dataclass

from mlchaos_probe import events as probe
from mlchaos_probe.metrics import PipelineMetrics

from ..config import Config
from ..s3 import Store


@dataclass(frozen=True)
class Context:
    config: Config
    store: Store
    metrics: PipelineMetrics
    step_name: str

    def skip(self, reason: str) -> None:
        """Report an idempotent skip: the step's output is already published."""
        probe.step_skipped(run_id=self.config.run_id, step_name=self.step_name, reason=reason)

    def published(self, artifact: str, key: str, logical_id: str) -> None:
        """Report an artifact this process created (never one found already there)."""
        probe.artifact_written(run_id=self.config.run_id, artifact=artifact, key=key, logical_id=logical_id)
