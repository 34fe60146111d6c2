"""Everything a run left behind that the checks may read, collected once after the run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from harness.evidence.inventory import Inventory
from harness.evidence.reference import ReferenceRun
from harness.evidence.workload_facts import WorkloadFacts
from harness.history.events import Event


@dataclass(frozen=True, kw_only=True)
class RunEvidence:
    """A run's history, the store's inventory, the uninterrupted run it is measured against, the
    workload's declared facts and the cluster's capacity; never the live cluster.

    ``inventory`` and ``reference`` are ``None`` when they could not be had, with the reason in
    ``inventory_error`` and ``reference_error``."""

    events: Sequence[Event]
    run_id: str
    facts: WorkloadFacts
    reference: ReferenceRun | None = None
    reference_error: str = ""
    inventory: Inventory | None = None
    inventory_error: str = ""
    pod_limit: int | None = None
    scoped_quotas: Mapping[str, int] = field(default_factory=dict)
