from __future__ import annotations

from harness.checks.quota import check_quota
from harness.history.events import PodExited, PodStarted


def pod(name: str, start: float, end: float, kind: str) -> list:
    return [PodStarted(ts=start, pod=name, job=name, node="n", pid=1, labels=f"kind={kind},step=train"),
            PodExited(ts=end, pod=name, job=name, node="n", exit_code=0, reason="Completed")]


def test_pods_within_the_quotas_pass():
    events = [*pod("d", 0, 10, "daily"), *pod("b1", 1, 3, "backfill"), *pod("b2", 2, 5, "backfill"),
              *pod("b3", 4, 6, "backfill")]
    result = check_quota(events, total=4, scoped={"kind=backfill": 2})
    assert result.verdict == "pass", result.evidence
    assert "at most 2 pods with kind=backfill running at once (quota 2)" in result.evidence


def test_too_many_backfill_pods_at_once_fail():
    events = pod("b1", 1, 5, "backfill") + pod("b2", 2, 5, "backfill") + pod("b3", 3, 5, "backfill")
    assert check_quota(events, total=4, scoped={"kind=backfill": 2}).verdict == "fail"


def test_exceeding_the_total_fails():
    events = [e for i in range(5) for e in pod(f"p{i}", i * 0.1, 9, "daily")]
    assert check_quota(events, total=4, scoped={}).verdict == "fail"


def test_no_pods_or_no_scoped_pods_is_unknown():
    assert check_quota([], total=4, scoped={"kind=backfill": 2}).verdict == "unknown"
    assert check_quota(pod("d", 0, 1, "daily"), total=4, scoped={"kind=backfill": 2}).verdict == "unknown"


def test_unexercised_scopes_are_judged_on_the_total_when_not_required():
    daily = [e for i in range(3) for e in pod(f"d{i}", i * 0.1, 9, "daily")]
    assert check_quota(daily, total=4, scoped={"kind=backfill": 1}).verdict == "unknown"
    relaxed = check_quota(daily, total=4, scoped={"kind=backfill": 1}, require_scoped=False)
    assert relaxed.verdict == "pass"
    assert "no pod of a quota scope ran, so the scoped quotas were not exercised" in relaxed.evidence
    crowded = [e for i in range(5) for e in pod(f"d{i}", i * 0.1, 9, "daily")]
    assert check_quota(crowded, total=4, scoped={"kind=backfill": 1}, require_scoped=False).verdict == "fail"
