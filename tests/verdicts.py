"""What an end-to-end test asserts of an experiment's checks: behaviour must pass, on any machine.

SLO verdicts are timings, so whether they pass may depend on the machine; the score gate covers them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from harness.checks.verdict import CheckResult

__all__ = ["failing_behaviour", "failing_behaviour_in_summary"]


def failing_behaviour(checks: Iterable[CheckResult]) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Each non-SLO check that did not pass: name → (verdict, evidence)."""
    return {c.name: (c.verdict, tuple(c.evidence)) for c in checks
            if not c.name.startswith("slo:") and c.verdict != "pass"}


def failing_behaviour_in_summary(summary: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """The same, for each experiment of a report's ``summary.json``: experiment → {check: verdict}."""
    failing = {}
    for exp in summary["experiments"]:
        bad = {c["name"]: c["verdict"] for c in exp["checks"]
               if not c["name"].startswith("slo:") and c["verdict"] != "pass"}
        if bad:
            failing[exp["name"]] = bad
    return failing
