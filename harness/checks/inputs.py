"""What the runs of a history read, and who wrote it: shared by the lineage and partial-data checks.

Read from ``inputs_read`` events (a step's inputs by role), ``run_started`` (a run's partition date)
and ``artifact_written`` (which run created a key).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from harness.history.events import ArtifactWritten, Event, InputsRead, RunStarted, of_type


@dataclass(frozen=True, kw_only=True)
class RunInputs:
    """One run's partition date ("" when no step reported starting it) and every input it reported."""

    run_id: str
    date: str
    reads: tuple[InputsRead, ...]

    def keys(self, role: str) -> frozenset[str]:
        """Every key the run read as ``role``."""
        return frozenset(k for r in self.reads if r.role == role for k in r.keys)

    def reported(self, role: str) -> bool:
        return any(r.role == role for r in self.reads)


def run_inputs(events: Sequence[Event]) -> dict[str, RunInputs]:
    """Every run that started a step or reported an input, by run id, in history order."""
    dates: dict[str, str] = {}
    reads: dict[str, list[InputsRead]] = defaultdict(list)
    for event in events:
        if isinstance(event, RunStarted):
            dates.setdefault(event.run_id, event.date)
        elif isinstance(event, InputsRead):
            reads[event.run_id].append(event)
    ids = list(dict.fromkeys([*dates, *reads]))
    return {r: RunInputs(run_id=r, date=dates.get(r, ""), reads=tuple(reads.get(r, ()))) for r in ids}


def writers(events: Sequence[Event]) -> dict[str, str]:
    """The run that first reported creating each key (``artifact_written``)."""
    found: dict[str, str] = {}
    for event in of_type(list(events), ArtifactWritten):
        found.setdefault(event.key, event.run_id)
    return found
