"""The plan of a crash-point sweep: which crash points are killed, at which occurrence, and how.

Pure: no cluster. The fault (:mod:`harness.faults.crash_point`) writes :func:`describe` into each kill's
``FaultInjected`` detail and the check reads it back with :func:`parse_detail`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["CrashKill", "describe", "draw_plan", "parse_detail", "parse_points"]


@dataclass(frozen=True, kw_only=True)
class CrashKill:
    """One planned kill: the ``occurrence``-th time a process reaches ``point``; ``forced``: SIGKILL at
    once, else SIGTERM with ``grace_period_seconds``. ``pod`` is filled in when the kill is aimed."""

    point: str
    occurrence: int
    forced: bool
    grace_period_seconds: float = 30.0
    pod: str = ""

    def __post_init__(self) -> None:
        if not self.point or "#" in self.point or "," in self.point:
            raise ValueError(f"a crash point is a name without '#' or ',', got {self.point!r}")
        if self.occurrence < 1:
            raise ValueError(f"occurrence must be >= 1, got {self.occurrence}")
        if not math.isfinite(self.grace_period_seconds) or self.grace_period_seconds < 0:
            raise ValueError(f"grace_period_seconds must be >= 0, got {self.grace_period_seconds}")

    @property
    def armed(self) -> str:
        """The name the pipeline is armed with: ``<point>#<occurrence>``."""
        return f"{self.point}#{self.occurrence}"

    @property
    def grace(self) -> float:
        return 0.0 if self.forced else self.grace_period_seconds


def parse_points(points: Sequence[str], *, max_occurrence: int) -> dict[str, int]:
    """``name`` or ``name:N`` entries as {point: highest occurrence to draw}; ``name`` gets ``max_occurrence``
    (a point a step passes once, such as ``train.model-published``, is written ``name:1``)."""
    parsed: dict[str, int] = {}
    for entry in points:
        name, sep, bound = str(entry).partition(":")
        if sep and not (bound.isdigit() and int(bound) >= 1):
            raise ValueError(f"crash point {entry!r}: write name or name:N with N >= 1")
        if not name or "#" in name or "," in name:
            raise ValueError(f"a crash point is a name without '#' or ',', got {entry!r}")
        parsed[name] = int(bound) if sep else max_occurrence
    return parsed


def draw_plan(seed: int, points: Mapping[str, int], *, kills: int, forced_share: float,
              grace_period_seconds: float = 30.0) -> tuple[CrashKill, ...]:
    """``kills`` kills drawn from ``seed`` among ``points`` ({point: highest occurrence}): distinct points
    while there are enough (then points again, at other occurrences), each at an occurrence in 1..its
    highest, forced with probability ``forced_share``. The same arguments always give the same plan."""
    if not points:
        raise ValueError("a crash-point sweep needs at least one crash point")
    if kills < 1 or min(points.values()) < 1:
        raise ValueError("kills and every point's highest occurrence must each be >= 1")
    if not 0.0 <= forced_share <= 1.0:
        raise ValueError(f"forced_share must be between 0 and 1, got {forced_share}")
    if kills > sum(points.values()):
        raise ValueError(f"{kills} kills do not fit {sum(points.values())} crash-point occurrences")
    rng = random.Random(seed)
    order = sorted(points)
    chosen: dict[str, CrashKill] = {}
    while len(chosen) < kills:
        rng.shuffle(order)
        for point in order:
            if len(chosen) == kills:
                break
            kill = CrashKill(point=point, occurrence=rng.randint(1, points[point]),
                             forced=rng.random() < forced_share, grace_period_seconds=grace_period_seconds)
            chosen.setdefault(kill.armed, kill)
    return tuple(chosen.values())


def describe(kill: CrashKill) -> str:
    how = "SIGKILL at once" if kill.forced else f"SIGTERM, SIGKILL after {kill.grace:g}s"
    return f"crash point {kill.armed} ({how})"


def parse_detail(detail: str) -> tuple[str, int, bool] | None:
    """(point, occurrence, forced) from a crash-point fault's detail; None when it is not one."""
    marker = "crash point "
    start = detail.find(marker)
    if start < 0:
        return None
    armed, _, rest = detail[start + len(marker):].partition(" ")
    point, sep, occurrence = armed.rpartition("#")
    if not sep or not occurrence.isdigit():
        return None
    return point, int(occurrence), rest.startswith("(SIGKILL")
