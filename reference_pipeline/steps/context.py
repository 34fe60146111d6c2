"""What every step gets."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Config
from ..events import emit
from ..metrics import Metrics
from ..s3 import Store


@dataclass(frozen=True)
class Context:
    config: Config
    store: Store
    metrics: Metrics
    step_name: str

    def skip(self, reason: str) -> None:
        """Report an idempotent skip: the step's output is already published."""
        emit("step_skipped", run_id=self.config.run_id, step_name=self.step_name, reason=reason)

    def published(self, artifact: str, key: str, logical_id: str) -> None:
        """Report an artifact this process created (never one found already there)."""
        emit("artifact_written", run_id=self.config.run_id, artifact=artifact, key=key, logical_id=logical_id)
