"""Run one game day: the schedule's pipeline runs back to back, its faults at their positions, each run judged.

Each run of the night is an experiment session of its own (its folder, history,
bucket, uninterrupted run to compare with, checks and score), driven here
instead of by a Chaos Toolkit method: the run starts, each scheduled fault waits
for its position (a training step, or seconds into another step's pod) and is
injected through the run's fault recorder, lasting faults are healed at theirs,
and the session observes and judges the run. Runs start until the night's time
is up; the run in flight then finishes (its remaining faults are not injected).

What happened to every scheduled fault (injected, missed because no pod of its
step was running, not reached because the run ended first or the time was up)
is written to ``faults.json`` beside ``schedule.json``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from harness import lifecycle, runtime
from harness.errors import HarnessError
from harness.experiment.model import ExperimentSpec
from harness.experiment.result import ExperimentResult
from harness.experiment.session import ExperimentSession
from harness.gameday.generators import interval
from harness.gameday.inject import inject
from harness.gameday.model import HEAL_AT_END, INSTANT, Schedule, ScheduledFault, ScheduledRun, Trigger
from harness.gameday.plan_file import GameDayFile
from harness.history.events import Event, PodStarted, TrainStep
from harness.workload.pipeline_run import PipelineRun
from harness.workload.role import Workload

__all__ = ["FaultRecord", "Night", "NightRun"]


@dataclass(frozen=True, kw_only=True)
class FaultRecord:
    """What became of one scheduled fault. ``status``: injected, missed (it could not act: no pod of
    its step running, a group held), not reached (its run ended first, or the night's time was up).
    ``reached_step``: the run's training step when it acted (-1 before training)."""

    fault_id: str
    run: int
    kind: str
    entry: str
    trigger_step: str
    trigger_training_step: int
    status: str
    detail: str
    reached_step: int = -1
    at: float = 0.0
    recorder_ids: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class NightRun:
    """One scheduled run and what became of it (``result`` is None when it never started)."""

    scheduled: ScheduledRun
    folder: str
    result: ExperimentResult | None
    succeeded: bool


class Night:
    """Runs a schedule on an environment. ``runs`` and ``records`` fill as it goes, so a caller that
    catches an interruption still has every run judged so far (the one in flight judged ``interrupted``)."""

    def __init__(self, *, schedule: Schedule, gameday: GameDayFile, workload: Workload, env: runtime.Environment,
                 night_dir: Path, tag: str, progress: Callable[[str], None]) -> None:
        self.schedule = schedule
        self.gameday = gameday
        self.workload = workload
        self.env = env
        self.night_dir = night_dir
        self.tag = tag
        self.progress = progress
        self.runs: list[NightRun] = []
        self.records: list[FaultRecord] = []

    def run(self, *, deadline: float) -> None:
        """Run the schedule until ``deadline`` (a ``time.time()``); an interruption propagates once the run
        in flight is judged and ``faults.json`` is written."""
        try:
            for scheduled in self.schedule.runs:
                if time.time() >= deadline or lifecycle.interruption.is_set():
                    self._not_started(scheduled, "the night's time was up before this run started")
                    continue
                self.progress(f"game day {self.tag}: run {scheduled.index}/{len(self.schedule.runs)} "
                              f"({scheduled.date}, {len(scheduled.faults)} fault(s) scheduled)")
                self._one_run(scheduled, deadline=deadline)
        finally:
            done = {r.scheduled.index for r in self.runs}
            for scheduled in self.schedule.runs:
                if scheduled.index not in done:
                    self._not_started(scheduled, "the game day was interrupted")
            _write_records(self.records, self.night_dir / "faults.json")

    def _not_started(self, scheduled: ScheduledRun, why: str) -> None:
        self.runs.append(NightRun(scheduled=scheduled, folder=_folder(scheduled), result=None, succeeded=False))
        self.records += [_record(f, scheduled, "not reached", why) for f in scheduled.faults]

    def _one_run(self, scheduled: ScheduledRun, *, deadline: float) -> None:
        folder = _folder(scheduled)
        spec = ExperimentSpec(
            path=Path(self.schedule.source), name=folder,
            title=f"game day {self.tag}: run {scheduled.index} ({scheduled.date})",
            weight=1.0, workload=self.workload, pipeline=replace(self.gameday.settings, date=scheduled.date),
            checks=self.gameday.checks, slos=self.gameday.slos, document={},
        )
        session = ExperimentSession(spec=spec, env=self.env, out_dir=self.night_dir / folder, tag=self.tag,
                                    chaos_seed=self.schedule.seed)
        records: dict[str, FaultRecord] = {}
        status, succeeded = "failed", False
        active = session.begin()
        try:
            pipeline_run = active.start_pipeline_run(kind="daily")
            _drive(active, pipeline_run, scheduled, records, schedule=self.schedule, deadline=deadline,
                   progress=self.progress)
            outcome = pipeline_run.wait(timeout=self.gameday.settings.step_timeout_seconds * len(self.workload.steps))
            succeeded = outcome.succeeded
            status = "completed" if succeeded else "failed"
            self.progress(f"game day {self.tag}: run {scheduled.index} {'succeeded' if succeeded else 'FAILED'} "
                          f"in {outcome.duration_seconds:.1f}s ({outcome.detail})")
        finally:
            # Interrupted: observe sees the interruption and judges the run so (every check unknown).
            result = session.finish({"status": status, "deviated": not succeeded})
            self.runs.append(NightRun(scheduled=scheduled, folder=folder, result=result, succeeded=succeeded))
            why = "the run was interrupted" if result.status == "interrupted" else "the run ended first"
            self.records += [records.get(f.fault_id) or _record(f, scheduled, "not reached", why)
                             for f in scheduled.faults]
        if result.status == "interrupted":
            raise lifecycle.Interrupted(f"run {scheduled.index} was interrupted: {result.error}")


def _folder(scheduled: ScheduledRun) -> str:
    return f"run-{scheduled.index:02d}"


def _drive(
    active: runtime.ActiveExperiment, pipeline_run: PipelineRun, scheduled: ScheduledRun,
    records: dict[str, FaultRecord], *, schedule: Schedule, deadline: float, progress: Callable[[str], None],
) -> None:
    """Inject and heal the run's faults at their positions, in order, recording each in ``records``."""
    order = tuple(s.name for s in active.workload.steps)
    train = schedule.train_step_name
    heal_at = Trigger(step=train)
    # Each fault's injection, and each lasting fault's heal at a training step, in pipeline order;
    # a heal before an injection at the same position frees its exclusion group first.
    ops: list[tuple[tuple[int, float], int, ScheduledFault]] = []
    for fault in scheduled.faults:
        ops.append((interval(fault, order, train)[0], 1, fault))
        if fault.heal_after_step not in (INSTANT, HEAL_AT_END):
            ops.append(((order.index(train), float(fault.heal_after_step)), 0, fault))
    ops.sort(key=lambda op: (op[0], op[1]))
    for _, is_injection, fault in ops:
        if not is_injection:
            record = records.get(fault.fault_id)
            if record is not None and record.recorder_ids and _wait(
                    active, pipeline_run, replace(heal_at, training_step=fault.heal_after_step), deadline=None):
                for fault_id in record.recorder_ids:
                    active.faults.heal(fault_id)
            continue
        if time.time() >= deadline:
            records[fault.fault_id] = _record(fault, scheduled, "not reached", "the night's time was up")
            continue
        if not _wait(active, pipeline_run, fault.at, deadline=deadline):
            records[fault.fault_id] = _record(fault, scheduled, "not reached",
                                              "the run ended (or the night's time was up) before its position")
            continue
        reached = _training_step(active.history.events(), pipeline_run.run_id)
        try:
            ids, detail = inject(active.faults, fault, date=scheduled.date)
            status = "injected"
        except (HarnessError, ValueError) as exc:
            ids, detail, status = (), str(exc), "missed"
        where = (f"at training step {reached}" if fault.at.step == schedule.train_step_name
                 else f"{fault.at.seconds:g}s after its pod started")
        progress(f"  {fault.fault_id} {fault.entry} on {fault.at.step} {where}: {status} ({detail})")
        records[fault.fault_id] = replace(_record(fault, scheduled, status, detail), reached_step=reached,
                                          at=time.time(), recorder_ids=ids)


def _wait(active: runtime.ActiveExperiment, pipeline_run: PipelineRun, trigger: Trigger, *,
          deadline: float | None) -> bool:
    """Block until ``trigger``'s position; False when the run ended first (or ``deadline`` passed). An
    interruption raises (HarnessError from the history, or the signal's KeyboardInterrupt)."""
    run_id = pipeline_run.run_id
    train = active.workload.train_step

    def reached(event: Event) -> bool:
        if trigger.step == train:
            return isinstance(event, TrainStep) and event.run_id == run_id and event.step >= trigger.training_step
        return (isinstance(event, PodStarted) and event.pod.startswith(run_id)
                and f"step={trigger.step}" in event.labels.split(","))

    while True:
        if lifecycle.interruption.is_set():
            raise lifecycle.Interrupted("the game day was told to stop")
        if any(reached(e) for e in active.history.events()):
            break
        if pipeline_run.outcome is not None or (deadline is not None and time.time() >= deadline):
            return False
        time.sleep(0.2)
    # Seconds into the step's pod: a kill while it writes its model or registry record.
    if trigger.step != train and trigger.seconds > 0 and lifecycle.interruption.wait(trigger.seconds):
        raise lifecycle.Interrupted("the game day was told to stop")
    return pipeline_run.outcome is None


def _training_step(events: Sequence[Event], run_id: str) -> int:
    return max((e.step for e in events if isinstance(e, TrainStep) and e.run_id == run_id), default=-1)


def _record(fault: ScheduledFault, run: ScheduledRun, status: str, detail: str) -> FaultRecord:
    return FaultRecord(fault_id=fault.fault_id, run=run.index, kind=fault.kind, entry=fault.entry,
                       trigger_step=fault.at.step, trigger_training_step=fault.at.training_step, status=status,
                       detail=detail)


def _write_records(records: Sequence[FaultRecord], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(r) for r in records], indent=1, sort_keys=True) + "\n", encoding="utf-8")

