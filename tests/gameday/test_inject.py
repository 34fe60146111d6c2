"""A scheduled fault becomes the right Fault with the right parameters, through the run's fault recorder.

The kinds a team adds to its own game-day file (spot-preemption, checkpoint-corruption, registry-race)
map to the faults the experiments use. A capturing recorder shows the mapping without a cluster; the
checkpoint corruption is also injected for real against moto's S3 through the fault context a night's
run builds (``ActiveExperiment``), which is where it gets its store and bucket.
"""

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
from harness.faults.checkpoint_corruption import CHECKPOINT_CORRUPTION, CheckpointCorruptionParams
from harness.faults.recorder import FaultRecorder
from harness.faults.registry_race import REGISTRY_RACE, RegistryRaceParams
from harness.faults.role import ActiveFault, Fault, FaultContext, Target
from harness.faults.spot_preemption import SPOT_PREEMPTION, SpotPreemptionParams
from harness.gameday.inject import inject
from harness.gameday.model import INSTANT, ParamValue, ScheduledFault, Trigger
from harness.gameday.plan_file import load_gameday
from harness.history.store import History
from harness.runtime import ActiveExperiment, Environment
from harness.services.inventory import prepare_bucket
from harness.workload.reference import reference_workload
from tests.moto_s3 import moto_s3, use_test_credentials


class CapturingRecorder(FaultRecorder):
    """Records what it was asked to inject instead of planning and acting."""

    def __init__(self) -> None:
        super().__init__(sink=lambda _event: None, experiment="gameday",
                         context=FaultContext(cluster=cast(Cluster, object()), seed=1, train_step="train"))
        self.asked: list[tuple[object, object]] = []

    def inject(self, fault: Fault[Any], params: Any) -> ActiveFault:
        self.asked.append((fault, params))
        return ActiveFault(fault_id=f"{fault.name}-1", fault=fault.name, seed=1, undo_record=None,
                           target=Target(name="t", detail=f"{fault.name} planned"), heal=lambda: "healed")


def _scheduled(kind: str, params: Mapping[str, ParamValue], *, step: str = "train") -> ScheduledFault:
    return ScheduledFault(fault_id="r2-f1", entry=kind, kind=kind, at=Trigger(step=step, training_step=120),
                          heal_after_step=INSTANT, params=tuple(sorted(params.items())))


@pytest.mark.parametrize(("kind", "params", "fault", "expected"), [
    ("spot-preemption", {"notice_seconds": 15}, SPOT_PREEMPTION,
     SpotPreemptionParams(labels={"step": "train"}, notice_seconds=15.0)),
    ("spot-preemption", {}, SPOT_PREEMPTION, SpotPreemptionParams(labels={"step": "train"}, notice_seconds=30.0)),
    ("checkpoint-corruption", {"mode": "truncate", "grace_period_seconds": 5}, CHECKPOINT_CORRUPTION,
     CheckpointCorruptionParams(mode="truncate", grace_period_seconds=5.0)),
    ("checkpoint-corruption", {}, CHECKPOINT_CORRUPTION, CheckpointCorruptionParams(mode="flip")),
    # Racers over the days before the run's date, as a backfill storm's runs are.
    ("registry-race", {"racers": 2, "train_steps": 12}, REGISTRY_RACE,
     RegistryRaceParams(name="race-r2-f1", dates=("2026-11-20", "2026-11-21"), train_steps=12)),
    ("registry-race", {}, REGISTRY_RACE,
     RegistryRaceParams(name="race-r2-f1", dates=("2026-11-19", "2026-11-20", "2026-11-21"), train_steps=10)),
])
def test_each_added_kind_injects_its_fault(kind: str, params: Mapping[str, ParamValue], fault: object,
                                           expected: object) -> None:
    recorder = CapturingRecorder()
    ids, detail = inject(recorder, _scheduled(kind, params), date="2026-11-22")
    assert recorder.asked == [(fault, expected)]
    assert ids == (f"{kind}-1",)  # lasting: the night heals it by this id
    assert detail == f"{kind} planned"


def test_a_spot_preemption_is_aimed_at_the_step_it_was_drawn_for() -> None:
    recorder = CapturingRecorder()
    inject(recorder, _scheduled("spot-preemption", {"notice_seconds": 0}, step="evaluate"), date="2026-11-22")
    [(_, params)] = recorder.asked
    assert cast(SpotPreemptionParams, params).labels == {"step": "evaluate"}


def test_parameters_the_fault_refuses_raise_value_error_which_the_night_records_missed() -> None:
    with pytest.raises(ValueError, match="at least one date"):
        inject(CapturingRecorder(), _scheduled("registry-race", {"racers": 0}), date="2026-11-22")
    with pytest.raises(ValueError, match="mode must be one of"):
        inject(CapturingRecorder(), _scheduled("checkpoint-corruption", {"mode": "shred"}), date="2026-11-22")


# --- the corruption through a night's own fault context, against moto --------------------------------

RUN = "gd-run-01"
STATE = f"runs/reference/2026-11-22/{RUN}/checkpoints/step-000050/state.pt"
MANIFEST = f"runs/reference/2026-11-22/{RUN}/checkpoints/step-000050/MANIFEST.json"


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    use_test_credentials(monkeypatch)
    with moto_s3() as url:
        yield url


@dataclass
class TrainingPodCluster:
    """One running training pod of the run; records deletions."""

    deleted: list[tuple[str, float | None]] = field(default_factory=list)

    def list_pods(self, *, labels: Mapping[str, str] | None = None) -> list[PodInfo]:
        return [PodInfo(name=f"{RUN}-train-0", job=f"{RUN}-train", node="n1", phase="Running",
                        labels=dict(labels or {}))]

    def delete_pod(self, name: str, *, grace_period_seconds: float | None = None) -> PodInfo:
        self.deleted.append((name, grace_period_seconds))
        return PodInfo(name=name, job=f"{RUN}-train", node="n1", phase="Failed", labels={}, exit_code=137)


def _state_body(endpoint: str, bucket: str) -> bytes:
    return bytes(boto3.client("s3", endpoint_url=endpoint).get_object(Bucket=bucket, Key=STATE)["Body"].read())


def test_a_nights_fault_context_gives_the_corruption_its_store(endpoint: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_STATE_DIR", str(tmp_path / "state"))  # the run's undo log
    bucket = RUN  # a night's run gets a bucket named by its run id, versioned (ExperimentSession.begin)
    prepare_bucket(endpoint_url=endpoint, bucket=bucket)
    body = bytes(random.Random(5).randrange(256) for _ in range(2048))
    s3 = boto3.client("s3", endpoint_url=endpoint)
    s3.put_object(Bucket=bucket, Key=STATE, Body=body)
    s3.put_object(Bucket=bucket, Key=MANIFEST, Body=json.dumps(
        {"step": 50, "state_key": STATE, "sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}).encode())
    cluster = TrainingPodCluster()
    gameday = load_gameday(None, workload=reference_workload())
    active = ActiveExperiment(
        env=Environment(cluster=cast(Cluster, cluster), s3_env={}, s3_direct_url=endpoint),
        name="run-01", run_id=RUN, workload=reference_workload(), settings=gameday.settings,
        history=History(tmp_path / "history.jsonl"), bucket=bucket, chaos_seed=3)

    ids, detail = inject(active.faults, _scheduled("checkpoint-corruption", {"mode": "flip"}), date="2026-11-22")

    assert "step-50 checkpoint" in detail and f"deleted pod {RUN}-train-0" in detail
    assert cluster.deleted == [(f"{RUN}-train-0", 0.0)]
    assert _state_body(endpoint, bucket) != body
    assert active.faults.heal(ids[0]) == list(ids)
    assert _state_body(endpoint, bucket) == body
    assert active.faults.heal(ids[0]) == []  # twice is harmless
