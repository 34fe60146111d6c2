"""What one experiment run produced."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.checks.interruptions import FaultOutcome
from harness.checks.verdict import CheckResult
from harness.score import Score


@dataclass(frozen=True, kw_only=True)
class ExperimentResult:
    name: str
    title: str
    path: Path
    run_id: str
    weight: float
    status: str  # Chaos Toolkit's journal status: completed, failed, aborted, interrupted
    deviated: bool
    checks: tuple[CheckResult, ...]
    faults: tuple[FaultOutcome, ...]
    score: Score
    started_at: float
    ended_at: float
    history_path: Path
    reference_sha256: str | None
    error: str = ""  # why the experiment could not run, when it could not
