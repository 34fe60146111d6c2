"""The records of a game day: its plan, its drawn schedule, its figures and its summary.

A game day (DESIGN section 7) runs the pipeline back to back for a fixed time
while a seeded schedule throws mixed faults at it. The plan comes from a
game-day file; the schedule is drawn from the plan and a seed before anything is
injected and written as ``schedule.json``; the figures are computed from the
runs' histories alone; the summary is what the trend across nights reads.

Positions inside a run: a fault aimed at the training step fires once the run
has completed training step ``Trigger.training_step``; a fault aimed at any
other step fires ``Trigger.seconds`` after that step's pod started. A fault that
lasts (a drain, a proxy fault, a backfill storm) is healed once the run has
completed training step ``ScheduledFault.heal_after_step``, or when the run ends
(``HEAL_AT_END``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

ParamValue = float | int | str

HEAL_AT_END = -1
"""``heal_after_step`` of a lasting fault healed only when its run ends."""

INSTANT = 0
"""``heal_after_step`` of a fault with nothing to heal later (a pod delete)."""

DEFAULT_STEP_SECONDS = (0.2, 2.0)
"""When a fault is aimed at a step other than training: how long after its pod started, by default. Short:
the reference pipeline's other steps live 1-10 s, and a kill must land while the step still runs."""

FAULT_KINDS = ("pod-delete", "node-drain", "network-delay", "storage-throttle", "backfill-storm",
               "spot-preemption", "checkpoint-corruption", "registry-race")
"""The fault families a game-day catalogue may name. The last three are not in the default catalogue:
a team adds them to its own game-day file (README, "Game days", for what they need and which default
checks they affect)."""


# --- the plan (a game-day file) ----------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ParamRange:
    """A parameter drawn uniformly from ``[low, high]``; ``integer`` rounds it; ``choices`` (when
    given) draws one of them instead."""

    low: float = 0.0
    high: float = 0.0
    integer: bool = False
    choices: tuple[ParamValue, ...] = ()


@dataclass(frozen=True, kw_only=True)
class CatalogueEntry:
    """One kind of fault the night may draw, with its weight among the others.

    ``steps``: the pipeline steps whose pods it may be aimed at, with their weights (the
    workload's training step is named by its own name). ``hold_steps``: for a lasting
    fault, how many training steps it lasts (drawn from the range; ``HEAL_AT_END`` as
    ``low`` lasts until the run ends); ``(0, 0)`` for an instant fault. ``params``:
    the fault's parameters and their ranges (for example ``grace_period_seconds``)."""

    name: str  # unique in the catalogue, e.g. "pod-delete-forced"
    kind: str  # one of FAULT_KINDS
    weight: float = 1.0
    steps: Mapping[str, float] = field(default_factory=dict)  # step name -> weight; empty: the training step
    params: Mapping[str, ParamRange] = field(default_factory=dict)
    hold_steps: tuple[int, int] = (0, 0)
    seconds: tuple[float, float] = DEFAULT_STEP_SECONDS


@dataclass(frozen=True, kw_only=True)
class Constraints:
    """What every drawn schedule respects.

    ``min_gap_steps``: the least number of training steps between two faults of one run
    on the training step. ``max_active``: at most this many faults active at once
    (instant faults count at their moment; lasting ones until healed). ``quiet_start_steps``:
    no fault on the training step before this training step. ``max_faults_per_run``: the
    most faults one run gets (across all its steps)."""

    min_gap_steps: int = 60
    max_active: int = 2
    quiet_start_steps: int = 40
    max_faults_per_run: int = 3


@dataclass(frozen=True, kw_only=True)
class WorkloadMix:
    """The night's pipeline runs: daily runs back to back over ``dates`` (cycled; each date's
    uninterrupted run is computed once and cached), ``fault_free_share`` of them left alone
    to measure the undisturbed pace, and ``run_seconds``: the shortest a run is expected to take. The
    schedule draws ``ceil(duration / run_seconds)`` runs, enough to fill the night even if every run is
    that fast; the runs left when the night's time is up are not started (and reported so)."""

    dates: tuple[str, ...] = ("2026-11-21", "2026-11-22")
    fault_free_share: float = 0.0
    run_seconds: float = 30.0  # reference runs take 38-65 s on the embedded cluster here


@dataclass(frozen=True, kw_only=True)
class GameDayPlan:
    """A validated game-day file (or the default one)."""

    source: str  # the file's path, or "default"
    catalogue: tuple[CatalogueEntry, ...]
    constraints: Constraints
    mix: WorkloadMix
    train_steps: int  # the training steps of one run (the workload's setting), the axis faults are placed on
    train_step_name: str  # the workload's training step
    step_order: tuple[str, ...]  # the workload's steps in the order they run


# --- the drawn schedule (schedule.json) ----------------------------------------


@dataclass(frozen=True, kw_only=True)
class Trigger:
    """Where in its run a fault fires: after ``training_step`` training steps when ``step`` is the
    training step, else ``seconds`` after ``step``'s pod started."""

    step: str
    training_step: int = 0
    seconds: float = 0.0


@dataclass(frozen=True, kw_only=True)
class ScheduledFault:
    """One fault of the night. ``params`` are sorted by name. ``groups``: the exclusion groups it
    holds while active (two faults sharing one are never active together)."""

    fault_id: str  # "r<run>-f<n>", unique in the night
    entry: str  # the catalogue entry it was drawn from
    kind: str  # one of FAULT_KINDS
    at: Trigger
    heal_after_step: int  # INSTANT, HEAL_AT_END or a training step
    params: tuple[tuple[str, ParamValue], ...] = ()
    groups: tuple[str, ...] = ()

    def param(self, name: str, default: ParamValue) -> ParamValue:
        return dict(self.params).get(name, default)


@dataclass(frozen=True, kw_only=True)
class ScheduledRun:
    """One pipeline run of the night, with its faults in the order they fire."""

    index: int  # 1-based
    date: str
    faults: tuple[ScheduledFault, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """A night's whole schedule, drawn before anything is injected. The same seed and plan give the
    same schedule, byte for byte once written (see :mod:`harness.gameday.schedule_file`)."""

    seed: int
    source: str  # the game-day file it was drawn from, or "default"
    duration_seconds: float
    train_steps: int
    train_step_name: str
    runs: tuple[ScheduledRun, ...]


# --- what the night measured --------------------------------------------------


BADPUT_CLASSES = ("startup", "checkpoint_save", "checkpoint_restore", "lost_progress", "scheduling_wait", "other")
"""Where unproductive time went (after Google's ml-goodput-measurement badput classes):
``startup``: pod start to training started (process start, imports, data loading);
``checkpoint_save`` / ``checkpoint_restore``: time inside saves and restores;
``lost_progress``: training time whose steps did not end up in a final model (steps redone after a
restore, the training of runs that never finished); ``scheduling_wait``: no container of the run
running (waiting for scheduling, restart backoff, between runs); ``other``: the rest (the other
pipeline steps, the time between steps)."""


@dataclass(frozen=True, kw_only=True)
class Badput:
    """Seconds of unproductive time by class (see ``BADPUT_CLASSES``)."""

    startup: float = 0.0
    checkpoint_save: float = 0.0
    checkpoint_restore: float = 0.0
    lost_progress: float = 0.0
    scheduling_wait: float = 0.0
    other: float = 0.0

    def total(self) -> float:
        return (self.startup + self.checkpoint_save + self.checkpoint_restore + self.lost_progress
                + self.scheduling_wait + self.other)


@dataclass(frozen=True, kw_only=True)
class RunFigures:
    """What one pipeline run of the night cost. ``recoveries``: seconds from each fault that ended
    a training attempt to the first training step of the attempt after it; ``unrecovered``:
    such faults after which training never made progress again."""

    run_id: str
    completed: bool  # the run produced its final model
    elapsed_seconds: float
    productive_seconds: float
    badput: Badput
    steps_lost: int
    recoveries: tuple[float, ...] = ()
    unrecovered: int = 0
    faults: Mapping[str, int] = field(default_factory=dict)  # fault kind -> count injected


@dataclass(frozen=True, kw_only=True)
class NightFigures:
    """The night's figures over all its runs. ``goodput`` = productive seconds / elapsed seconds
    (0-1); MTTR percentiles are over ``recoveries`` (None when there were none)."""

    runs_completed: int
    runs_failed: int
    faults: Mapping[str, int]
    elapsed_seconds: float
    productive_seconds: float
    goodput: float
    badput: Badput
    steps_lost: int
    mttr_p50: float | None
    mttr_p95: float | None
    mttr_max: float | None
    unrecovered: int


@dataclass(frozen=True, kw_only=True)
class RunVerdict:
    """One run's checks as the night's report and JUnit show them."""

    index: int
    run_id: str
    date: str
    folder: str  # the run's folder, relative to the night's
    status: str  # completed, failed, interrupted, not started
    score: float
    checks: tuple[tuple[str, str, tuple[str, ...]], ...]  # (check, verdict, evidence)


@dataclass(frozen=True, kw_only=True)
class NightSummary:
    """What ``summary.json`` of a night holds, and what the trend across nights reads."""

    night: str  # the night's folder name
    status: str  # passed, failed, interrupted
    seed: int
    schedule_file: str
    gameday_file: str
    commit: str
    cluster: str
    pipeline: str
    started_at: float
    ended_at: float
    duration_seconds: float  # the time box asked for
    score: float
    score_formula: str
    min_score: float
    figures: NightFigures
    runs: tuple[RunVerdict, ...]
