"""``no-training-on-partial-data`` on hand-built histories: pass, fail, unknown."""

from __future__ import annotations

from harness.checks.partial_data import check_partial_data
from harness.history.events import InputsRead, TrainingStarted
from tests.checks.layouts import LAYOUT
from tests.checks.lineage_histories import Runs, feature_key, raw_key

DAY = "2026-11-21"


def test_a_run_trained_on_all_24_parts_passes() -> None:
    runs = Runs().full_run("r1", DAY)
    result = check_partial_data(runs.events, runs.inventory(), layout=LAYOUT)
    assert result.verdict == "pass", result.evidence
    assert "all 24 raw parts" in result.evidence[0]


def test_a_run_that_trained_on_a_partial_day_fails_naming_the_hours() -> None:
    runs = Runs().full_run("r1", DAY, raw_hours=[h for h in range(24) if h not in (3, 17)])
    result = check_partial_data(runs.events, runs.inventory(hidden=[raw_key(DAY, 3)]), layout=LAYOUT)
    assert result.verdict == "fail"
    assert "run r1" in result.evidence[0] and "hour(s) 03, 17" in result.evidence[0]


def test_a_part_that_never_landed_is_caught_by_the_count_alone() -> None:
    runs = Runs().full_run("r1", DAY, raw_hours=range(23))
    runs.stored.pop(raw_key(DAY, 23))  # the bucket never held it: only the 24-part day says it is missing
    assert check_partial_data(runs.events, runs.inventory(), layout=LAYOUT).verdict == "fail"
    assert check_partial_data(runs.events, runs.inventory(), layout=LAYOUT, parts_per_date=0).verdict == "pass"


def test_features_built_by_another_run_are_judged_by_that_runs_raw_inputs() -> None:
    runs = Runs().full_run("backfill", DAY, raw_hours=range(20))
    features = [feature_key(DAY, s) for s in range(16)]
    runs.started("daily", DAY).read("daily", "train", "features", DAY, features)
    runs.events.append(TrainingStarted(ts=2000.0, run_id="daily", start_step=0, total_steps=10, checkpoint_every=5,
                                       seed=7, device="cpu"))
    result = check_partial_data(runs.events, runs.inventory(), layout=LAYOUT)
    assert result.verdict == "fail"
    assert any(line.startswith("run daily") and "by backfill" in line for line in result.evidence)


def test_a_run_refused_by_validate_never_trained_and_is_not_judged() -> None:
    runs = Runs().full_run("r1", DAY).started("partial", "2026-11-22")
    assert check_partial_data(runs.events, runs.inventory(), layout=LAYOUT).verdict == "pass"


def test_unknown_when_no_run_trained() -> None:
    runs = Runs().started("partial", DAY)
    result = check_partial_data(runs.events, runs.inventory(), layout=LAYOUT)
    assert result.verdict == "unknown" and "no run trained" in result.evidence[0]


def test_unknown_when_the_trained_run_reported_no_inputs() -> None:
    runs = Runs().full_run("r1", DAY)
    runs.events = [e for e in runs.events if not isinstance(e, InputsRead)]
    result = check_partial_data(runs.events, runs.inventory(), layout=LAYOUT)
    assert result.verdict == "unknown" and "reported no features" in result.evidence[0]


def test_unknown_when_the_features_were_built_before_the_run() -> None:
    runs = Runs().started("r1", DAY).read("r1", "train", "features", DAY, [feature_key(DAY, 0)])
    runs.events.append(TrainingStarted(ts=2000.0, run_id="r1", start_step=0, total_steps=10, checkpoint_every=5,
                                       seed=7, device="cpu"))
    result = check_partial_data(runs.events, runs.inventory(), layout=LAYOUT)
    assert result.verdict == "unknown" and "not built during this run" in result.evidence[0]
