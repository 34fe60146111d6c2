"""What Prometheus answered, as plain frozen data (queried by ``harness.services.prometheus_query``)."""

from __future__ import annotations

from dataclasses import dataclass

Labels = tuple[tuple[str, str], ...]
Point = tuple[float, float]


@dataclass(frozen=True, kw_only=True)
class Series:
    """One time series of a result: its labels (sorted by name) and its ``(unix time, value)`` points."""

    labels: Labels
    points: tuple[Point, ...]

    def label(self, name: str, default: str = "") -> str:
        return dict(self.labels).get(name, default)

    def selector(self) -> str:
        """The labels as PromQL writes them, e.g. ``{pod="p-0",run_id="r1"}`` (``{}`` when none)."""
        def quoted(v: str) -> str:
            return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

        return "{" + ",".join(f'{k}="{quoted(v)}"' for k, v in self.labels) + "}"


@dataclass(frozen=True, kw_only=True)
class RangeResult:
    """What a range query returned: the PromQL as run, the window asked for, the series."""

    promql: str
    start: float
    end: float
    series: tuple[Series, ...]

    @property
    def point_count(self) -> int:
        return sum(len(s.points) for s in self.series)
