"""The Workload role: what the harness needs from a pipeline under test (DESIGN section 5).

A workload is declared in a ``pipeline.yaml`` (:mod:`harness.workload.declaration`);
the reference pipeline is one declaration (:mod:`harness.workload.reference`), a
user's pipeline another. Nothing else in the harness knows which pipeline runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from harness.evidence.workload_facts import WorkloadFacts

SettingValue = str | int | float | bool
SettingType = Literal["int", "float", "str", "bool"]


@dataclass(frozen=True, kw_only=True)
class StepTemplate:
    """One step's job template: run ``command`` with ``env`` (the image's entrypoint is not used
    on process nodes), after the steps named in ``after``."""

    name: str
    command: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    image: str = ""
    after: tuple[str, ...] = ()
    cpu_request: str = ""
    cpu_limit: str = ""


@dataclass(frozen=True, kw_only=True)
class SettingSpec:
    """A setting the pipeline accepts from an experiment, passed as the env var ``env``."""

    name: str
    env: str
    type: SettingType
    default: SettingValue | None = None


class Workload(Protocol):
    """A pipeline under test, as the harness drives and judges it."""

    @property
    def name(self) -> str:
        """The pipeline's name: ``PIPELINE_NAME`` and the Jobs' ``pipeline`` label."""
        ...

    @property
    def steps(self) -> tuple[StepTemplate, ...]:
        """Every step, in an order that respects ``after``."""
        ...

    @property
    def train_step(self) -> str:
        """The step that trains: faults aimed at training hit its pods."""
        ...

    @property
    def settings(self) -> Mapping[str, SettingSpec]:
        """The settings an experiment may give, by name."""
        ...

    def facts(self) -> WorkloadFacts:
        """What the checks may know: layout, metric names, training step."""
        ...

    def version(self) -> str:
        """A digest of everything that changes what the pipeline computes (its code and declaration)."""
        ...
