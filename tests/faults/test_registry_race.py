"""The registry race: racers run up to register, are released together, and heal waits for them and
stops what is left (once, twice harmlessly, and through the undo log after a killed harness)."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import harness.cluster.kube.undo_kinds  # noqa: F401  teaches heal the k8s-jobs records
from harness import undo as undo_module
from harness.cluster.base import Cluster, EventSink, JobSpec, JobStatus
from harness.cluster.kube.backend import KubernetesCluster
from harness.errors import HarnessError
from harness.evidence.workload_facts import WorkloadFacts
from harness.faults.recorder import FaultRecorder
from harness.faults.registry_race import REGISTRY_RACE, RegistryRaceParams, racer_selector
from harness.faults.role import FaultContext
from harness.history.events import FaultHealed, FaultInjected
from harness.undo import UndoLog
from harness.workload.backfill import Backfill
from harness.workload.role import SettingSpec, StepTemplate
from harness.workload.settings import PipelineSettings
from tests.cluster.conftest import Collector, py, wait_until

DATES = ("2026-11-18", "2026-11-19", "2026-11-20")


@dataclass(frozen=True)
class TwoStepWorkload:
    """A pipeline of ``prep`` then ``register`` (commands chosen by the test)."""

    prep: tuple[str, ...]
    register: tuple[str, ...]
    name: str = "racer"
    train_step: str = "prep"
    settings: Mapping[str, SettingSpec] = field(default_factory=dict)

    @property
    def steps(self) -> tuple[StepTemplate, ...]:
        return (StepTemplate(name="prep", command=self.prep), StepTemplate(name="register", command=self.register))

    def facts(self) -> WorkloadFacts:
        raise NotImplementedError


class InstantCluster:
    """Jobs succeed ``seconds`` after they are submitted; records when each was submitted and ended."""

    def __init__(self, seconds: float = 0.05) -> None:
        self.seconds = seconds
        self.submitted: dict[str, float] = {}
        self.ended: dict[str, float] = {}
        self.deleted: list[str] = []
        self._lock = threading.Lock()

    def submit_job(self, spec: JobSpec, *, sink: EventSink) -> None:
        with self._lock:
            self.submitted[spec.name] = time.monotonic()

    def wait_job(self, name: str, *, timeout: float) -> JobStatus:
        time.sleep(self.seconds)
        with self._lock:
            self.ended[name] = time.monotonic()
        return JobStatus(name=name, active=0, failed=0, succeeded=True, finished=True)

    def delete_job(self, name: str) -> None:
        self.deleted.append(name)


def _context(cluster: object, workload: TwoStepWorkload, undo: UndoLog | None = None) -> FaultContext:
    def launch(*, name: str, dates: Sequence[str], concurrency: int, train_steps: int) -> Backfill:
        return Backfill(name=name, cluster=cluster, sink=lambda e: None, workload=workload,  # type: ignore[arg-type]
                        settings=PipelineSettings(date="2026-11-21"), dates=dates, concurrency=concurrency,
                        bucket="b", s3_env={})

    return FaultContext(cluster=cluster, seed=7, launch_backfill=launch, undo=undo)  # type: ignore[arg-type]


def test_racers_are_released_together_after_all_prepared_and_heal_once(collector: Collector) -> None:
    cluster = InstantCluster()
    recorder = FaultRecorder(sink=collector, experiment="race",
                             context=_context(cluster, TwoStepWorkload(prep=("p",), register=("r",))))
    active = recorder.inject(REGISTRY_RACE, RegistryRaceParams(dates=DATES, wait_seconds=30))
    assert recorder.heal() == [active.fault_id]
    preps = [f"registry-race-{d}-prep" for d in DATES]
    registers = [f"registry-race-{d}-register" for d in DATES]
    assert set(cluster.submitted) == set(preps + registers)
    # the barrier: no register started before every prep had ended; then all within moments
    assert min(cluster.submitted[r] for r in registers) >= max(cluster.ended[p] for p in preps)
    assert max(cluster.submitted[r] for r in registers) - min(cluster.submitted[r] for r in registers) < 0.5
    (healed,) = collector.of(FaultHealed)
    assert isinstance(healed, FaultHealed) and "race over: 3 of 3 racer(s) released at register, 3 finished" \
        in healed.detail
    assert recorder.heal() == []  # twice is harmless
    assert active.heal() == healed.detail  # and the heal itself repeats, acting no more
    assert cluster.deleted == []  # nothing was left to stop
    (injected,) = collector.of(FaultInjected)
    assert isinstance(injected, FaultInjected) and "3 racing run(s)" in injected.detail


def test_heal_stops_a_race_that_does_not_end_in_time(collector: Collector) -> None:
    cluster = InstantCluster(seconds=3.0)
    recorder = FaultRecorder(sink=collector, experiment="race",
                             context=_context(cluster, TwoStepWorkload(prep=("p",), register=("r",))))
    recorder.inject(REGISTRY_RACE, RegistryRaceParams(dates=DATES[:2], wait_seconds=0.5))
    recorder.heal()
    (healed,) = collector.of(FaultHealed)
    assert isinstance(healed, FaultHealed) and "stopped unfinished: 0 of 2" in healed.detail


def test_bad_parameters_and_a_context_without_a_launcher_are_refused() -> None:
    with pytest.raises(ValueError):
        RegistryRaceParams(dates=())
    with pytest.raises(ValueError):
        RegistryRaceParams(dates=("2026-01-01", "2026-01-01"))
    with pytest.raises(HarnessError, match="cannot launch runs"):
        REGISTRY_RACE.plan(FaultContext(cluster=InstantCluster(), seed=1),  # type: ignore[arg-type]
                           RegistryRaceParams(dates=DATES))
    cluster = InstantCluster()
    ctx = _context(cluster, TwoStepWorkload(prep=("p",), register=("r",)))
    with pytest.raises(ValueError, match="barrier_before names no step"):
        REGISTRY_RACE.inject(ctx, RegistryRaceParams(dates=DATES, barrier_before="nope"),
                             REGISTRY_RACE.plan(ctx, RegistryRaceParams(dates=DATES)))
    assert cluster.submitted == {}


def test_selector_names_the_racers_only() -> None:
    assert racer_selector(DATES[:2]) == "kind=backfill,run in (backfill-2026-11-18,backfill-2026-11-19)"


# --- on the embedded cluster (serialize with flock /tmp/issue10/cluster.lock) ---------------------------


def _racers(cluster: KubernetesCluster) -> list[str]:
    return [p.name for p in cluster.list_pods(labels={"kind": "backfill"}) if p.phase == "Running"]


def test_the_undo_log_stops_the_racers_after_a_killed_harness(cluster: KubernetesCluster, collector: Collector,
                                                              tmp_path: Path) -> None:
    undo = UndoLog(tmp_path / "fault-undo")
    workload = TwoStepWorkload(prep=py("pass"), register=py("import time\nwhile True: time.sleep(0.05)"))
    recorder = FaultRecorder(sink=collector, experiment="race", context=_context(cast_cluster(cluster), workload,
                                                                                  undo))
    active = recorder.inject(REGISTRY_RACE, RegistryRaceParams(dates=DATES[:2], wait_seconds=1))
    assert [r.kind for r in undo.pending()] == ["k8s-jobs"]
    wait_until(lambda: len(_racers(cluster)) == 2, timeout=120, what="both racers' register pods running")
    # The harness is SIGKILLed here: only its undo records remain; `mlchaos heal` runs them.
    lines = undo_module.heal(undo)
    assert len(lines) == 1 and "deleted jobs" in lines[0], lines
    wait_until(lambda: not _racers(cluster), timeout=60, what="the racers gone")
    assert undo_module.heal(undo) == []  # twice is harmless
    assert recorder.heal() == [active.fault_id]  # the recorder's own heal after the undo finds nothing left
    assert undo.pending() == []


def cast_cluster(cluster: KubernetesCluster) -> Cluster:
    return cluster
