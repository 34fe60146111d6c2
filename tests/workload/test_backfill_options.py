"""Backfill options: which dates a stop lets finish (publish_share), and the barrier before a step."""

from __future__ import annotations

import time

import pytest

from harness.workload.backfill import Backfill, BackfillOptions
from harness.workload.settings import PipelineSettings
from tests.faults.test_registry_race import InstantCluster, TwoStepWorkload


def test_publish_share_picks_the_first_date_then_spreads_evenly() -> None:
    quarter = BackfillOptions(publish_share=0.25)
    assert [i for i in range(12) if quarter.publishes(i)] == [0, 4, 8]
    assert not any(BackfillOptions().publishes(i) for i in range(10))
    assert all(BackfillOptions(publish_share=1.0).publishes(i) for i in range(10))
    with pytest.raises(ValueError):
        BackfillOptions(publish_share=1.5)


def _backfill(cluster: InstantCluster, dates: list[str], concurrency: int) -> Backfill:
    return Backfill(name="bf", cluster=cluster, sink=lambda e: None,  # type: ignore[arg-type]
                    workload=TwoStepWorkload(prep=("p",), register=("r",)), settings=PipelineSettings(),
                    dates=dates, concurrency=concurrency, bucket="b", s3_env={})


def test_a_stop_lets_the_publishing_runs_finish_and_stops_the_others() -> None:
    cluster = InstantCluster(seconds=0.6)
    backfill = _backfill(cluster, ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"], concurrency=2)
    backfill.configure(BackfillOptions(publish_share=0.5))  # dates 0 and 2 publish
    backfill.start()
    time.sleep(0.3)  # dates 0 and 1 are in their first step
    backfill.cancel(publish_wait=30)
    outcomes = {o.run_id: o for o in backfill.outcomes()}
    assert outcomes["backfill-2026-01-01"].succeeded  # let finish: through register
    assert "bf-2026-01-01-register" in cluster.submitted
    assert not outcomes["backfill-2026-01-02"].succeeded  # stopped
    assert "bf-2026-01-02-register" not in cluster.submitted
    assert "bf-2026-01-03-prep" not in cluster.submitted  # nothing more launched
    backfill.cancel(publish_wait=0)  # twice is harmless


def test_configure_is_refused_after_start_and_for_an_unknown_step() -> None:
    backfill = _backfill(InstantCluster(), ["2026-01-01"], concurrency=1)
    with pytest.raises(ValueError, match="names no step"):
        backfill.configure(BackfillOptions(barrier_before="train"))
    backfill.start()
    with pytest.raises(ValueError, match="has started"):
        backfill.configure(BackfillOptions())
    assert backfill.wait(timeout=10)
