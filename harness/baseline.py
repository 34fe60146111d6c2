"""Compare a run's scores with a stored baseline run, as pytest-benchmark's compare-fail.

A baseline is any earlier ``summary.json``. The gate fails when the suite score
dropped more than ``max_drop`` points below the baseline's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError


@dataclass(frozen=True, kw_only=True)
class Scores:
    """The scores a summary.json holds."""

    source: str
    score: float
    experiments: Mapping[str, float]


@dataclass(frozen=True, kw_only=True)
class Comparison:
    baseline: Scores
    score: float
    max_drop: float
    experiment_deltas: tuple[tuple[str, float | None, float], ...]  # (name, baseline score or None, current)

    @property
    def drop(self) -> float:
        return self.baseline.score - self.score

    @property
    def passed(self) -> bool:
        return self.drop <= self.max_drop


def load_scores(path: Path) -> Scores:
    """Read the scores of a summary.json; a missing or malformed file is a HarnessError."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return Scores(
            source=str(path),
            score=float(doc["score"]),
            experiments={str(e["name"]): float(e["score"]) for e in doc["experiments"]},
        )
    except FileNotFoundError:
        raise HarnessError(f"baseline {path} does not exist; "
                           "point --chaos-baseline at an earlier summary.json") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise HarnessError(f"baseline {path} is not a summary.json of this harness ({exc})") from None


def compare(*, baseline: Scores, score: float, experiments: Mapping[str, float], max_drop: float) -> Comparison:
    deltas = tuple((name, baseline.experiments.get(name), now) for name, now in experiments.items())
    return Comparison(baseline=baseline, score=score, max_drop=max_drop, experiment_deltas=deltas)


def describe(c: Comparison) -> list[str]:
    lines = [
        f"baseline {c.baseline.source}: {c.baseline.score:.1f} -> {c.score:.1f} "
        f"({-c.drop:+.1f} points; fails below -{c.max_drop:g}): {'ok' if c.passed else 'REGRESSION'}"
    ]
    for name, before, now in c.experiment_deltas:
        was = "new" if before is None else f"{before:.1f}"
        lines.append(f"  {name}: {was} -> {now:.1f}")
    return lines
