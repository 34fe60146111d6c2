"""The checks an experiment can name in its ``extensions`` block, and their evaluation."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from harness.checks import duplicates, quota, resume, steady_state
from harness.checks.verdict import CheckResult, safe
from harness.history.events import Event
from harness.services.inventory import Inventory


@dataclass(frozen=True, kw_only=True)
class CheckInputs:
    """Everything a check may read; never the live cluster."""

    events: Sequence[Event]
    run_id: str
    reference_sha256: str | None
    inventory: Inventory | None = None
    pod_limit: int | None = None
    scoped_quotas: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class CheckSpec:
    name: str
    weight: float = 1.0


_CHECKS: dict[str, Callable[[CheckInputs, float], CheckResult]] = {
    resume.NAME: lambda i, w: resume.check_resume(
        i.events, run_id=i.run_id, reference_sha256=i.reference_sha256, weight=w
    ),
    steady_state.NAME: lambda i, w: steady_state.check_steady_state(i.events, weight=w),
    duplicates.NAME: lambda i, w: duplicates.check_duplicates(i.events, i.inventory, weight=w),
    quota.NAME: lambda i, w: quota.check_quota(i.events, total=i.pod_limit, scoped=i.scoped_quotas, weight=w),
}

KNOWN_CHECKS: tuple[str, ...] = tuple(sorted(_CHECKS))


def evaluate(specs: Sequence[CheckSpec], inputs: CheckInputs) -> list[CheckResult]:
    """Run each named check; a crash gives ``unknown`` with the weight kept."""
    results = []
    for spec in specs:
        check = _CHECKS[spec.name]
        result = safe(spec.name, lambda: check(inputs, spec.weight))
        results.append(
            result
            if result.weight == spec.weight
            else CheckResult(name=result.name, verdict=result.verdict, evidence=result.evidence, weight=spec.weight)
        )
    return results
