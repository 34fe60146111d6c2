"""The resilience score (DESIGN section 6), as LitmusChaos computes it.

An experiment scores the weighted share of its checks that passed, 0-100 (an
``unknown`` counts as not passed). The suite scores the weighted mean of its
experiments. ``formula`` spells out the inputs so a reader can recompute it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.checks.verdict import CheckResult


@dataclass(frozen=True, kw_only=True)
class Score:
    value: float  # 0-100
    formula: str


def experiment_score(checks: Sequence[CheckResult]) -> Score:
    """Weighted share of passed checks; 0 when there are no checks (nothing was shown)."""
    total = sum(c.weight for c in checks)
    passed = sum(c.weight for c in checks if c.verdict == "pass")
    if total <= 0:
        return Score(value=0.0, formula="no weighted checks: 0")
    terms = " + ".join(f"{c.weight:g}" for c in checks if c.verdict == "pass") or "0"
    return Score(value=100.0 * passed / total, formula=f"100 * ({terms}) / {total:g}")


def suite_score(experiments: Sequence[tuple[float, Score]]) -> Score:
    """Weighted mean of ``(weight, score)`` pairs; 0 when there is nothing to average."""
    total = sum(w for w, _ in experiments)
    if total <= 0:
        return Score(value=0.0, formula="no experiments: 0")
    value = sum(w * s.value for w, s in experiments) / total
    terms = " + ".join(f"{w:g} * {s.value:.1f}" for w, s in experiments)
    return Score(value=value, formula=f"({terms}) / {total:g}")
