"""Checkpoint corruption against moto's S3 (no cluster): damages the newest checkpoint, heals completely."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import boto3
import pytest

from harness.cluster.base import Cluster, PodInfo
from harness.errors import HarnessError
from harness.faults.checkpoint_corruption import CHECKPOINT_CORRUPTION, CheckpointCorruptionParams, corrupt
from harness.faults.recorder import FaultRecorder
from harness.faults.role import FaultContext
from harness.history.events import FaultHealed, FaultInjected
from harness.lifecycle import free_port
from harness.services.inventory import prepare_bucket, take_inventory
from harness.undo import UndoLog, heal
from tests.cluster.conftest import Collector
from tests.moto_s3 import moto_s3, use_test_credentials

RUN = "r1"
PREFIX = f"runs/reference/2024-03-01/{RUN}/checkpoints"


def _state(step: int) -> str:
    return f"{PREFIX}/step-{step:06d}/state.pt"


def _manifest(step: int) -> str:
    return f"{PREFIX}/step-{step:06d}/MANIFEST.json"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_s3() as url:
        yield url


@pytest.fixture(autouse=True)
def aws(monkeypatch: pytest.MonkeyPatch) -> None:
    use_test_credentials(monkeypatch)


def _client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint)


@pytest.fixture
def bucket(endpoint: str, request: pytest.FixtureRequest) -> str:
    """A versioned bucket with two complete checkpoints of run r1 (steps 10 and 20)."""
    name = "ck-" + hashlib.sha256(request.node.name.encode()).hexdigest()[:16]
    prepare_bucket(endpoint_url=endpoint, bucket=name)
    s3 = _client(endpoint)
    for step in (10, 20):
        body = bytes(random.Random(step).randrange(256) for _ in range(4096))
        s3.put_object(Bucket=name, Key=_state(step), Body=body)
        manifest = {"step": step, "state_key": _state(step), "sha256": hashlib.sha256(body).hexdigest(),
                    "size": len(body)}
        s3.put_object(Bucket=name, Key=_manifest(step), Body=json.dumps(manifest).encode())
    return name


def _body(endpoint: str, bucket: str, key: str) -> bytes:
    return bytes(_client(endpoint).get_object(Bucket=bucket, Key=key)["Body"].read())


def _versions(endpoint: str, bucket: str, key: str) -> list[str]:
    return [v.version_id for v in take_inventory(endpoint_url=endpoint, bucket=bucket).versions if v.key == key]


@dataclass
class FakeCluster:
    """Deletes pods by name; records what the damaged state looked like when it was asked to."""

    endpoint: str
    bucket: str
    deleted: list[tuple[str, float | None, bytes]] = field(default_factory=list)

    def list_pods(self, *, labels: Mapping[str, str] | None = None) -> list[PodInfo]:
        return [PodInfo(name="train-0", job="train", node="n1", phase="Running", labels=dict(labels or {}))]

    def delete_pod(self, name: str, *, grace_period_seconds: float | None = None) -> PodInfo:
        self.deleted.append((name, grace_period_seconds, _body(self.endpoint, self.bucket, _state(20))))
        return PodInfo(name=name, job="train", node="n1", phase="Failed", labels={}, exit_code=137)


def _recorder(endpoint: str, bucket: str, collector: Collector, *, cluster: object = None,
              undo: UndoLog | None = None) -> FaultRecorder:
    return FaultRecorder(sink=collector, experiment="corruption", context=FaultContext(
        cluster=cast(Cluster, cluster), seed=7, run_labels={"run": RUN}, train_step="train", undo=undo,
        s3_url=endpoint, bucket=bucket))


@pytest.mark.parametrize("mode", ["flip", "truncate"])
def test_damages_the_newest_checkpoint_and_heal_restores_it(mode: str, endpoint: str, bucket: str,
                                                            tmp_path: Path) -> None:
    original = _body(endpoint, bucket, _state(20))
    collector = Collector()
    undo = UndoLog(tmp_path / "undo")
    faults = _recorder(endpoint, bucket, collector, undo=undo)
    active = faults.inject(CHECKPOINT_CORRUPTION, CheckpointCorruptionParams(mode=mode, kill=False))
    assert active.target.name == _manifest(20)
    damaged = _body(endpoint, bucket, _state(20))
    assert damaged != original
    assert len(damaged) == len(original) if mode == "flip" else len(damaged) < len(original)
    assert _body(endpoint, bucket, _state(10)) != b"" and len(undo.pending()) == 1
    assert len(_versions(endpoint, bucket, _state(20))) == 2

    assert faults.heal() == [active.fault_id]
    assert _body(endpoint, bucket, _state(20)) == original
    assert len(_versions(endpoint, bucket, _state(20))) == 1  # the fault's version is gone, no trace left
    assert undo.pending() == []
    assert faults.heal() == []  # twice is harmless
    assert _body(endpoint, bucket, _state(20)) == original
    injected = [e for e in collector.events if isinstance(e, FaultInjected)]
    healed = [e for e in collector.events if isinstance(e, FaultHealed)]
    assert len(injected) == 1 and injected[0].target == _manifest(20) and "step-20" in injected[0].detail
    assert len(healed) == 1 and "current again" in healed[0].detail


def test_kills_the_training_pod_after_the_damage(endpoint: str, bucket: str) -> None:
    original = _body(endpoint, bucket, _state(20))
    cluster = FakeCluster(endpoint, bucket)
    collector = Collector()
    active = _recorder(endpoint, bucket, collector, cluster=cluster).inject(
        CHECKPOINT_CORRUPTION, CheckpointCorruptionParams(mode="flip"))
    assert [(name, grace) for name, grace, _ in cluster.deleted] == [("train-0", 0.0)]
    assert cluster.deleted[0][2] != original  # the damage was there before the pod died
    assert active.target.pod == "train-0" and active.target.grace_period_seconds == 0.0
    assert "pod:train-0" in active.target.excludes


def test_heal_through_the_undo_log_after_a_killed_harness(endpoint: str, bucket: str, tmp_path: Path) -> None:
    """The harness dies after the damage: its recorder never heals; ``mlchaos heal`` reads the undo log."""
    original = _body(endpoint, bucket, _state(20))
    undo = UndoLog(tmp_path / "undo")
    _recorder(endpoint, bucket, Collector(), undo=undo).inject(
        CHECKPOINT_CORRUPTION, CheckpointCorruptionParams(mode="truncate", kill=False))
    assert _body(endpoint, bucket, _state(20)) != original
    done = heal(UndoLog(tmp_path / "undo"))
    assert len(done) == 1 and "removed version" in done[0]
    assert _body(endpoint, bucket, _state(20)) == original
    assert len(_versions(endpoint, bucket, _state(20))) == 1
    assert heal(UndoLog(tmp_path / "undo")) == []


def test_an_undo_record_whose_store_is_gone_heals(tmp_path: Path) -> None:
    """A moto server dies with the harness that started it: nothing is left to take back."""
    from harness.services.object_versions import VersionedBucket, add_marked_version_record

    undo = UndoLog(tmp_path / "undo")
    port = free_port()
    add_marked_version_record(undo, bucket=VersionedBucket(f"http://127.0.0.1:{port}", "gone"), key="k", mark="m")
    done = heal(undo)
    assert len(done) == 1 and "went with the store" in done[0] and undo.pending() == []


def test_an_explicit_checkpoint_is_the_one_damaged(endpoint: str, bucket: str) -> None:
    original = _body(endpoint, bucket, _state(10))
    faults = _recorder(endpoint, bucket, Collector())
    faults.inject(CHECKPOINT_CORRUPTION, CheckpointCorruptionParams(manifest_key=_manifest(10), kill=False))
    assert _body(endpoint, bucket, _state(10)) != original
    faults.heal()
    assert _body(endpoint, bucket, _state(10)) == original


def test_refuses_an_unversioned_bucket_and_a_run_without_checkpoints(endpoint: str) -> None:
    s3 = _client(endpoint)
    s3.create_bucket(Bucket="plain")
    s3.put_object(Bucket="plain", Key=_state(10), Body=b"x" * 10)
    s3.put_object(Bucket="plain", Key=_manifest(10), Body=json.dumps(
        {"step": 10, "state_key": _state(10), "sha256": "0", "size": 10}).encode())
    with pytest.raises(HarnessError, match="versioned bucket"):
        _recorder(endpoint, "plain", Collector()).inject(CHECKPOINT_CORRUPTION, CheckpointCorruptionParams(kill=False))
    assert _body(endpoint, "plain", _state(10)) == b"x" * 10  # refused before acting
    prepare_bucket(endpoint_url=endpoint, bucket="empty")
    with pytest.raises(HarnessError, match="no complete checkpoint"):
        _recorder(endpoint, "empty", Collector()).inject(CHECKPOINT_CORRUPTION, CheckpointCorruptionParams(kill=False))


def test_damage_is_seeded_and_params_are_checked() -> None:
    body = bytes(range(256)) * 8
    assert corrupt(body, mode="flip", rng=random.Random(3)) == corrupt(body, mode="flip", rng=random.Random(3))
    flipped = corrupt(body, mode="flip", rng=random.Random(3), flips=5)
    assert sum(a != b for a, b in zip(body, flipped, strict=True)) == 5
    assert len(corrupt(body, mode="truncate", rng=random.Random(3))) < len(body)
    with pytest.raises(ValueError, match="mode"):
        CheckpointCorruptionParams(mode="zero")
    with pytest.raises(ValueError, match="flips"):
        CheckpointCorruptionParams(flips=0)
    with pytest.raises(ValueError, match="manifest_key"):
        CheckpointCorruptionParams(manifest_key="runs/x/state.pt")
