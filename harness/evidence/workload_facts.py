"""What a check may know about the pipeline under test: its declared facts, nothing live."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.evidence.layout import ArtifactLayout
from harness.evidence.metric_names import MetricNames


@dataclass(frozen=True, kw_only=True)
class WorkloadFacts:
    """The workload's name, its training step, its artifact layout and its metric names."""

    name: str
    train_step: str
    layout: ArtifactLayout
    metrics: MetricNames = field(default_factory=MetricNames)
