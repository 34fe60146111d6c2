"""The checkpoint-corruption activity: damages, kills, and heals once a new attempt has started training."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest

from harness import runtime
from harness.chaosext.checkpoint.actions import corrupt_latest_checkpoint
from harness.cluster.base import Cluster, PodInfo
from harness.faults.recorder import FaultRecorder
from harness.faults.role import FaultContext
from harness.history.events import FaultHealed, TrainingStarted
from harness.history.store import History
from tests.faults.test_checkpoint_corruption import RUN, FakeCluster, _body, _state, aws, bucket, endpoint

__all__ = ["aws", "bucket", "endpoint"]  # fixtures shared with the fault's tests


@dataclass
class Run:
    run_id: str


@dataclass
class FakeExperiment:
    faults: FaultRecorder
    history: History

    def main_run(self) -> Run:
        return Run(RUN)


def _experiment(endpoint: str, bucket: str, history: History) -> tuple[FakeExperiment, FakeCluster]:
    cluster = FakeCluster(endpoint, bucket)
    context = FaultContext(cluster=cast(Cluster, cluster), seed=7, run_labels={"run": RUN}, train_step="train",
                           s3_url=endpoint, bucket=bucket)
    return FakeExperiment(FaultRecorder(sink=history.append, context=context, experiment="e"), history), cluster


def test_heals_once_a_new_attempt_starts_training(endpoint: str, bucket: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    original = _body(endpoint, bucket, _state(20))
    with History(tmp_path / "history.jsonl") as history:
        experiment, cluster = _experiment(endpoint, bucket, history)
        monkeypatch.setattr(runtime, "current", lambda: experiment)
        kill = cluster.delete_pod

        def kill_and_replace(name: str, *, grace_period_seconds: float | None = None) -> PodInfo:
            # The fastest replacement there can be: it starts training before the kill has even returned.
            ended = kill(name, grace_period_seconds=grace_period_seconds)
            history.append(TrainingStarted(ts=time.time(), pod="train-1", run_id=RUN, start_step=10, total_steps=60,
                                           checkpoint_every=10, seed=7, device="cpu"))
            return ended

        monkeypatch.setattr(cluster, "delete_pod", kill_and_replace)
        outcome = corrupt_latest_checkpoint(mode="truncate", restore_timeout=30)
        assert outcome.startswith("checkpoint-corruption-1: removed damaged version"), outcome
        assert cluster.deleted[0][2] != original and _body(endpoint, bucket, _state(20)) == original
        assert len([e for e in history.events() if isinstance(e, FaultHealed)]) == 1
        assert experiment.faults.active() == []


def test_an_attempt_that_started_before_the_kill_does_not_count(endpoint: str, bucket: str, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    with History(tmp_path / "history.jsonl") as history:
        history.append(TrainingStarted(ts=time.time(), pod="train-0", run_id=RUN, start_step=0, total_steps=60,
                                       checkpoint_every=10, seed=7, device="cpu"))
        experiment, _ = _experiment(endpoint, bucket, history)
        monkeypatch.setattr(runtime, "current", lambda: experiment)
        outcome = corrupt_latest_checkpoint(mode="truncate", restore_timeout=0.3)
        assert "left active" in outcome, outcome  # the killed attempt's own start is not a restore
        assert experiment.faults.heal() == ["checkpoint-corruption-1"]


def test_leaves_the_damage_while_no_attempt_gets_to_train(endpoint: str, bucket: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    original = _body(endpoint, bucket, _state(20))
    with History(tmp_path / "history.jsonl") as history:
        experiment, _ = _experiment(endpoint, bucket, history)
        monkeypatch.setattr(runtime, "current", lambda: experiment)
        outcome = corrupt_latest_checkpoint(mode="flip", restore_timeout=0.3)
        assert "left active" in outcome and _body(endpoint, bucket, _state(20)) != original
        assert experiment.faults.heal() == ["checkpoint-corruption-1"]  # as the experiment's end does
        assert _body(endpoint, bucket, _state(20)) == original
