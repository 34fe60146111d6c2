"""Verdicts and how they combine.

A check answers ``pass``, ``fail`` or ``unknown`` with evidence a reader can
verify. Composition keeps the worst (fail > unknown > pass), as Jepsen's
``checker/compose``; a check that raises becomes ``unknown``, never ``pass``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

Verdict = Literal["pass", "fail", "unknown"]

_RANK: dict[Verdict, int] = {"pass": 0, "unknown": 1, "fail": 2}


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    """The outcome of one check on one experiment run."""

    name: str
    verdict: Verdict
    evidence: tuple[str, ...]
    weight: float = 1.0


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    """The worst of ``verdicts``; ``unknown`` when there are none (nothing was decided)."""
    found = list(verdicts)
    if not found:
        return "unknown"
    return max(found, key=_RANK.__getitem__)


def safe(name: str, check: Callable[[], CheckResult]) -> CheckResult:
    """Run ``check``; an exception becomes an ``unknown`` verdict naming it."""
    try:
        return check()
    except Exception as exc:
        return CheckResult(name=name, verdict="unknown", evidence=(f"check raised {type(exc).__name__}: {exc}",))
