"""Chaos Toolkit activities outside an experiment, their argument checks, and their routing to the faults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import cast

import pytest

from harness import runtime
from harness.chaosext.faults.actions import heal_faults
from harness.chaosext.network.actions import add_latency
from harness.chaosext.node.actions import drain_node
from harness.chaosext.pipeline.actions import start_backfill, start_pipeline_run
from harness.chaosext.pod.actions import parse_selector, terminate_pods
from harness.chaosext.storage.actions import throttle_storage
from harness.cluster.base import Cluster, PodInfo
from harness.errors import HarnessError
from harness.faults.recorder import FaultRecorder
from harness.faults.role import FaultContext
from harness.history.events import Event, FaultHealed, FaultInjected


def test_activities_outside_an_experiment_say_how_to_run_one() -> None:
    with pytest.raises(HarnessError, match="no harness experiment is active"):
        terminate_pods()


def test_bad_arguments_are_rejected_before_acting() -> None:
    with pytest.raises(ValueError, match="grace_period_seconds"):
        terminate_pods(grace_period_seconds=-1)
    with pytest.raises(ValueError, match="grace_period_seconds"):
        drain_node(grace_period_seconds=-1)
    with pytest.raises(ValueError, match="latency_ms"):
        add_latency(latency_ms=-1)
    with pytest.raises(ValueError, match="slowdown_probability"):
        throttle_storage(slowdown_share=2)
    with pytest.raises(ValueError, match="kind must be"):
        start_pipeline_run(kind="hourly")
    with pytest.raises(ValueError, match="must each be >= 1"):
        start_backfill(days=0)
    with pytest.raises(ValueError, match="key=value"):
        parse_selector("step")


def test_selector_parsing() -> None:
    assert parse_selector("step=train, kind=daily") == {"step": "train", "kind": "daily"}
    assert parse_selector("") == {}


class OneNodeCluster:
    """Just enough of a cluster for a drain: one running pod of each step of run ``r1`` on ``node-a``."""

    def __init__(self) -> None:
        self.pods = [PodInfo(name=f"{step}-pod", job=step, node="node-a", phase="Running",
                             labels={"run": "r1", "step": step}) for step in ("prepare", "fit")]
        self.cordoned: set[str] = set()

    def list_pods(self, labels: Mapping[str, str] | None = None) -> list[PodInfo]:
        return [p for p in self.pods if all(p.labels.get(k) == v for k, v in (labels or {}).items())]

    def drain(self, node: str, *, grace_period_seconds: float | None = None) -> list[PodInfo]:
        self.cordoned.add(node)
        self.pods = [replace(p, deleting=True) for p in self.pods]
        return self.pods

    def uncordon(self, node: str) -> None:
        self.cordoned.discard(node)


@dataclass
class FakeExperiment:
    faults: FaultRecorder


def test_activities_act_through_the_recorder_on_the_training_step_by_default(monkeypatch: pytest.MonkeyPatch
                                                                            ) -> None:
    cluster = OneNodeCluster()
    events: list[Event] = []
    context = FaultContext(cluster=cast(Cluster, cluster), seed=7, run_labels={"run": "r1"}, train_step="fit")
    experiment = FakeExperiment(faults=FaultRecorder(sink=events.append, context=context, experiment="e"))
    monkeypatch.setattr(runtime, "current", lambda: experiment)
    assert drain_node() == "node-a"
    (injected,) = [e for e in events if isinstance(e, FaultInjected)]
    assert injected.pod == "fit-pod" and injected.fault_id == "node-drain-1"  # "" picked the training step
    assert cluster.cordoned == {"node-a"}
    assert heal_faults() == ["node-drain-1"] and heal_faults() == []
    assert cluster.cordoned == set() and len([e for e in events if isinstance(e, FaultHealed)]) == 1
