"""``quality-gate``: no model below the evaluation gate was ever registered or became ``latest``.

Reads the history: ``evaluated`` events (metric, value, threshold, passed) and the registrations
(``model_registered``, and ``alias_moved`` writes that landed). A registration of run R fails the
check when R's latest evaluation before it did not pass, when R was not evaluated before it, or
when an evaluation reported ``passed`` with a value below its own threshold. With an inventory, a
live registry version naming a run without a passing evaluation fails it too (a registration whose
events were lost).

Verdict: ``fail`` on any such registration; ``unknown`` when no evaluation happened (nothing shows the
gate was applied) or a live registry version's record could not be read; ``pass`` otherwise
(including runs whose evaluation failed and that were, rightly,
never registered).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from harness.checks.registry_linearizable import VERSION
from harness.checks.verdict import CheckResult, Verdict
from harness.evidence.inventory import Inventory
from harness.history.events import AliasMoved, Evaluated, Event, ModelRegistered, of_type

NAME = "quality-gate"
EXAMPLES = 5


def check_quality_gate(events: Sequence[Event], inventory: Inventory | None = None, *,
                       weight: float = 1.0) -> CheckResult:
    """Judge the history (and the registry's versions in ``inventory``) against the contract above."""
    history = list(events)
    evaluations = of_type(history, Evaluated)
    failures: list[str] = []
    for e in evaluations:
        if e.passed and e.value < e.threshold:
            failures.append(f"evaluation of {e.run_id} reported passed with {e.metric} {e.value:.4f} below "
                            f"its threshold {e.threshold}")
    passing = {e.run_id for e in evaluations if e.passed and e.value >= e.threshold}
    registrations = 0
    last: dict[str, Evaluated] = {}
    for event in history:
        if isinstance(event, Evaluated):
            last[event.run_id] = event
            continue
        what = _registration(event)
        if not what:
            continue
        registrations += 1
        run_id = event.run_id  # type: ignore[attr-defined]  # both registration kinds carry it
        before = last.get(run_id)
        if before is not None and not before.passed:
            failures.append(f"{what} of {run_id} after its evaluation failed the gate "
                            f"({before.metric} {before.value:.4f} < {before.threshold})")
        elif before is None:
            failures.append(f"{what} of {run_id} before any evaluation of it")
    unread = 0
    if inventory is not None:
        for key in inventory.live_keys():
            if not VERSION.match(key):
                continue
            body = inventory.body_of(key)
            try:
                run_id = str(json.loads(body)["run_id"]) if body is not None else ""
            except (ValueError, KeyError, TypeError):
                run_id = ""
            if not run_id:
                unread += 1
            elif run_id not in passing and evaluations:
                failures.append(f"registry version {key} names run {run_id}, which has no passing evaluation")
    return _verdict(failures, evaluations, passing, registrations, unread, weight)


def _registration(event: Event) -> str:
    """What kind of registration ``event`` is ('' when it is none)."""
    if isinstance(event, ModelRegistered):
        return f"registration as v{event.version}"
    if isinstance(event, AliasMoved) and event.ok:
        return f"move of {event.alias} to v{event.to_version}"
    return ""


def _verdict(failures: list[str], evaluations: list[Evaluated], passing: set[str], registrations: int,
             unread: int, weight: float) -> CheckResult:
    runs = {e.run_id for e in evaluations}
    evidence = [f"{len(evaluations)} evaluation(s) of {len(runs)} run(s), {len(passing)} run(s) passed the gate; "
                f"{registrations} registration event(s)"]
    evidence += failures[:EXAMPLES]
    if len(failures) > EXAMPLES:
        evidence.append(f"... and {len(failures) - EXAMPLES} more")
    if unread:
        evidence.append(f"{unread} registry version record(s) whose body was not read (run not known)")
    verdict: Verdict
    if failures:
        verdict = "fail"
    elif not evaluations:
        verdict = "unknown"
        evidence.append("no evaluation happened, so nothing shows the gate was applied")
    elif unread:
        verdict = "unknown"
        evidence.append("a registry version whose run is not known may be one registered below the gate")
    else:
        verdict = "pass"
        evidence.append("every registration and alias move followed a passing evaluation of its run")
    return CheckResult(name=NAME, verdict=verdict, evidence=tuple(evidence), weight=weight)
