"""``summary.json``: the machine-readable result of a suite run (schema in README.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.checks.interruptions import FaultOutcome
from harness.experiment.result import ExperimentResult
from harness.suite import SuiteResult

SCHEMA_VERSION = 1


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="milliseconds")


def _fault(f: FaultOutcome) -> dict[str, Any]:
    return {
        "name": f.fault,
        "fault_id": f.fault_id,
        "target": f.target,
        "injected_at": iso(f.injected_at),
        "healed_at": iso(f.healed_at),
        "recovery_seconds": None if f.recovery_seconds is None else round(f.recovery_seconds, 3),
        "clock": f.clock,
        "steps_lost": f.steps_lost,
        "graceful": f.graceful,
        "exit_code": f.exit_code,
        "last_step_before": f.last_step_before,
        "latest_checkpoint": f.latest_checkpoint,
        "restored_step": f.restored_step,
        "resumed_pod": f.resumed_pod,
    }


def _experiment(r: ExperimentResult) -> dict[str, Any]:
    return {
        "name": r.name,
        "title": r.title,
        "file": str(r.path),
        "run_id": r.run_id,
        "weight": r.weight,
        "status": r.status,
        "deviated": r.deviated,
        "error": r.error,
        "score": round(r.score.value, 2),
        "formula": r.score.formula,
        "duration_seconds": round(r.ended_at - r.started_at, 3),
        "reference_params_sha256": r.reference_sha256,
        "history": str(r.history_path),
        "checks": [
            {"name": c.name, "verdict": c.verdict, "weight": c.weight, "evidence": list(c.evidence)} for c in r.checks
        ],
        "faults": [_fault(f) for f in r.faults],
    }


def summary_document(suite: SuiteResult) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": suite.run_id,
        "cluster": suite.cluster,
        "kubernetes_version": suite.kubernetes_version,
        "interrupted": suite.interrupted,
        "started_at": iso(suite.started_at),
        "ended_at": iso(suite.ended_at),
        "duration_seconds": round(suite.ended_at - suite.started_at, 3),
        "score": round(suite.score.value, 2),
        "formula": suite.score.formula,
        "min_score": suite.min_score,
        "passed": suite.passed,
        "baseline": None
        if suite.baseline is None
        else {
            "file": suite.baseline.baseline.source,
            "score": suite.baseline.baseline.score,
            "drop": round(suite.baseline.drop, 2),
            "max_drop": suite.baseline.max_drop,
            "passed": suite.baseline.passed,
        },
        "experiments": [_experiment(r) for r in suite.experiments],
    }


def write_summary(suite: SuiteResult, path: Path) -> None:
    path.write_text(json.dumps(summary_document(suite), indent=2) + "\n", encoding="utf-8")
