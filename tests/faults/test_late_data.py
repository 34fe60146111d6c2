"""The late-data fault against moto: hides parts as they land, lets them land late, heals completely
(twice harmlessly, and through the undo log after a killed harness), and leaves no version behind."""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import boto3
import pytest

from harness.cluster.base import Cluster
from harness.errors import HarnessError
from harness.faults.late_data import LATE_DATA, LateDataParams, _add_record, picked_keys
from harness.faults.recorder import FaultRecorder
from harness.faults.role import FaultContext
from harness.history.events import FaultHealed, FaultInjected
from harness.lifecycle import free_port
from harness.services.inventory import prepare_bucket, take_inventory
from harness.undo import UndoLog, heal
from tests.cluster.conftest import Collector
from tests.moto_s3 import moto_s3, use_test_credentials

KEYS = tuple(f"raw/reference/date=2026-11-21/hour={h:02d}/part-0.npz" for h in range(24))


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_s3() as url:
        yield url


@pytest.fixture
def bucket(endpoint: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    use_test_credentials(monkeypatch)
    name = "late-" + request.node.name.lower().replace("_", "-")[:40].strip("-")
    prepare_bucket(endpoint_url=endpoint, bucket=name)
    return name


def _s3(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint)


def _land(endpoint: str, bucket: str, keys: tuple[str, ...] = KEYS) -> None:
    for key in keys:
        _s3(endpoint).put_object(Bucket=bucket, Key=key, Body=key.encode())


def _live(endpoint: str, bucket: str) -> set[str]:
    pages = _s3(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


def _recorder(endpoint: str, bucket: str, collector: Collector, undo: UndoLog | None,
              cluster_kind: str = "existing") -> FaultRecorder:
    return FaultRecorder(sink=collector, experiment="late", context=FaultContext(
        cluster=cast(Cluster, SimpleNamespace(kind=cluster_kind)), seed=7, undo=undo, s3_url=endpoint,
        bucket=bucket))


def _wait(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _untouched(endpoint: str, bucket: str) -> None:
    """Every part has exactly one version and no delete marker: the fault left no trace."""
    inventory = take_inventory(endpoint_url=endpoint, bucket=bucket)
    assert [v for v in inventory.versions if v.is_delete_marker] == []
    assert sorted(v.key for v in inventory.versions) == sorted(KEYS)


def test_parts_land_late_then_the_bucket_is_as_before(endpoint: str, bucket: str, collector: Collector,
                                                      undo: UndoLog) -> None:
    faults = _recorder(endpoint, bucket, collector, undo)
    active = faults.inject(LATE_DATA, LateDataParams(keys=KEYS, count=2, delay_seconds=3.0))
    hidden = picked_keys(FaultContext(cluster=cast(Cluster, None), seed=active.seed), LateDataParams(keys=KEYS,
                                                                                                      count=2))
    assert len(undo.pending()) == 1  # written before the fault acted
    _land(endpoint, bucket)  # ingest writes the day after the fault was injected
    _wait(lambda: _live(endpoint, bucket) == set(KEYS) - set(hidden))
    _wait(lambda: _live(endpoint, bucket) == set(KEYS))  # they land late
    assert faults.heal() == [active.fault_id]
    assert faults.heal() == []  # twice is harmless
    (healed,) = collector.of(FaultHealed)
    assert isinstance(healed, FaultHealed) and "hid 2 of 2 part(s); landed late:" in healed.detail
    (injected,) = collector.of(FaultInjected)
    assert isinstance(injected, FaultInjected) and all(k in injected.detail for k in hidden)
    assert undo.pending() == []
    _untouched(endpoint, bucket)


def test_a_missing_part_stays_hidden_until_heal(endpoint: str, bucket: str, collector: Collector,
                                                undo: UndoLog) -> None:
    _land(endpoint, bucket)  # already landed: hidden at once
    faults = _recorder(endpoint, bucket, collector, undo)
    active = faults.inject(LATE_DATA, LateDataParams(keys=KEYS, count=1, missing=True))
    _wait(lambda: len(_live(endpoint, bucket)) == 23)
    time.sleep(0.5)
    assert len(_live(endpoint, bucket)) == 23
    assert faults.heal() == [active.fault_id] and faults.heal() == []
    (healed,) = collector.of(FaultHealed)
    assert isinstance(healed, FaultHealed) and "missing until heal, now restored" in healed.detail
    _untouched(endpoint, bucket)


def test_mlchaos_heal_restores_parts_a_killed_harness_left_hidden(endpoint: str, bucket: str,
                                                                  collector: Collector, undo: UndoLog) -> None:
    _land(endpoint, bucket)
    _recorder(endpoint, bucket, collector, undo).inject(LATE_DATA, LateDataParams(keys=KEYS, count=3, missing=True))
    _wait(lambda: len(_live(endpoint, bucket)) == 21)
    # The harness dies here: its recorder never heals; only the undo record is left.
    (done,) = heal(undo)
    assert "restored 3 hidden part(s)" in done
    assert undo.pending() == [] and heal(undo) == []
    _untouched(endpoint, bucket)


def test_heal_after_a_killed_harness_forgets_hidden_parts_only_of_a_store_that_died_with_it(
        bucket: str, tmp_path: Any) -> None:
    gone = f"http://127.0.0.1:{free_port()}"  # nothing answers there any more
    for kind, kept in (("embedded", False), ("existing", True)):
        undo = UndoLog(tmp_path / kind)
        _add_record(undo, url=gone, bucket=bucket, keys=KEYS[:2], ephemeral=kind == "embedded")
        if kept:  # an external store that does not answer now may answer later: the record stays
            with pytest.raises(HarnessError, match="heal again once S3 answers"):
                heal(undo)
            assert len(undo.pending()) == 1
        else:
            (done,) = heal(undo)
            assert "is gone, and the hidden parts with it" in done and undo.pending() == []


def test_the_same_seed_picks_the_same_parts() -> None:
    params = LateDataParams(keys=KEYS, count=3)
    ctx = FaultContext(cluster=cast(Cluster, None), seed=11)
    assert picked_keys(ctx, params) == picked_keys(ctx, params)
    assert picked_keys(ctx, params) != picked_keys(FaultContext(cluster=cast(Cluster, None), seed=12), params)


def test_an_unversioned_bucket_is_refused(endpoint: str, collector: Collector, undo: UndoLog,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    use_test_credentials(monkeypatch)
    _s3(endpoint).create_bucket(Bucket="late-plain")
    faults = _recorder(endpoint, "late-plain", collector, undo)
    with pytest.raises(HarnessError, match="does not keep versions"):
        faults.inject(LATE_DATA, LateDataParams(keys=KEYS))
    assert undo.pending() == [] and collector.events == []


def test_bad_parameters_are_refused_before_anything_acts() -> None:
    with pytest.raises(ValueError, match="count must be between 1 and 24"):
        LateDataParams(keys=KEYS, count=25)
    with pytest.raises(ValueError, match="distinct"):
        LateDataParams(keys=(KEYS[0], KEYS[0]))
