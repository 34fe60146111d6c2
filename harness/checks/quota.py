"""``pod-quota``: running pods never exceeded the cluster's quotas.

Replays pod starts and exits from the history and finds the most pods running
at once, overall (against the cluster's slots) and per quota scope
(``label=value``, e.g. ``kind=backfill``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness.checks.verdict import CheckResult
from harness.history.events import Event, PodExited, PodStarted

NAME = "pod-quota"


def check_quota(
    events: Sequence[Event], *, total: int | None, scoped: Mapping[str, int], weight: float = 1.0,
    require_scoped: bool = True,
) -> CheckResult:
    """Fail when more pods ran at once than ``total`` or than a scope's limit; unknown without pods, and,
    when ``require_scoped``, unknown when no pod of any scope ran (an experiment meant to exercise them did
    not). A game day's runs set it false: a run without a backfill is judged on the total alone."""
    labels: dict[str, set[str]] = {}
    running: set[str] = set()
    peak_total, peaks = 0, dict.fromkeys(scoped, 0)
    started = 0
    for e in sorted((e for e in events if isinstance(e, (PodStarted, PodExited))), key=lambda e: e.ts):
        if isinstance(e, PodStarted):
            started += 1
            labels[e.pod] = set(filter(None, e.labels.split(",")))
            running.add(e.pod)
        else:
            running.discard(e.pod)
        peak_total = max(peak_total, len(running))
        for scope in scoped:
            peaks[scope] = max(peaks[scope], sum(1 for p in running if scope in labels.get(p, set())))
    if started == 0:
        return CheckResult(name=NAME, verdict="unknown", evidence=("no pod ran in this history",), weight=weight)
    evidence = [f"{started} pods started; at most {peak_total} running at once (limit {total if total else 'none'})"]
    failed = total is not None and peak_total > total
    for scope, limit in scoped.items():
        evidence.append(f"at most {peaks[scope]} pods with {scope} running at once (quota {limit})")
        failed = failed or peaks[scope] > limit
    if scoped and all(peaks[s] == 0 for s in scoped):
        evidence.append("no pod of a quota scope ran, so the scoped quotas were not exercised")
        if require_scoped:
            return CheckResult(name=NAME, verdict="unknown", evidence=tuple(evidence), weight=weight)
    return CheckResult(name=NAME, verdict="fail" if failed else "pass", evidence=tuple(evidence), weight=weight)
