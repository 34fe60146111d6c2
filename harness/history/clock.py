"""One clock for a history whose events come from several machines.

The harness stamps its own events (pods started and exited, faults) with its
clock. A pipeline event carries two times: ``ts``, stamped by the pod's clock,
and ``received``, stamped by the harness when it read the line. On a real
cluster the pods' clocks are not the harness's, so any comparison across
sources (a fault and the first training step after it) is made on the
harness's clock: each container attempt's offset is estimated as the smallest
``received - ts`` among its events (its clock offset plus the least delivery
delay, as one-way NTP does), and its events are placed at ``ts + offset``.
That keeps the attempt's own spacing between events exact while aligning it
with the harness's events.
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.history.events import Event

__all__ = ["HarnessClock"]


class HarnessClock:
    """Places any event of ``events`` on the harness's clock."""

    NAME = "the harness's clock"

    def __init__(self, events: Iterable[Event]) -> None:
        self._offsets: dict[tuple[str, int], float] = {}
        for e in events:
            if e.received:
                key = (e.pod, e.attempt)
                delta = e.received - e.ts
                if key not in self._offsets or delta < self._offsets[key]:
                    self._offsets[key] = delta

    def time(self, event: Event) -> float:
        """When ``event`` happened, on the harness's clock."""
        if not event.received:
            return event.ts  # stamped by the harness itself
        return event.ts + self._offsets.get((event.pod, event.attempt), event.received - event.ts)

    @property
    def largest_offset(self) -> float:
        """The largest offset of any source's clock from the harness's (seconds, with delivery delay)."""
        return max((abs(o) for o in self._offsets.values()), default=0.0)

    def describe(self) -> str:
        """Which clock times were compared on, for a check's evidence."""
        return f"times on {self.NAME} (pod clocks offset by at most {1000 * self.largest_offset:.0f} ms)"
