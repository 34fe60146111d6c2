"""A game day's figures: goodput, badput by class, steps lost and recovery times, from the histories alone.

Every time is placed on the harness's clock (:class:`harness.history.clock.HarnessClock`): harness events
(pods, Jobs, faults, experiments) as stamped, pipeline events at their pod's stamp plus that container
attempt's estimated offset. A *training attempt* is a container attempt (pod, attempt) that printed
``TrainingStarted``; the *training Job* is the Job of such attempts.

**The run's events.** ``events`` may hold other runs' events (backfills beside it, with run ids
``<run_id>-...`` or ``backfill-<date>``). Pipeline events count when their ``run_id`` is the run's.
A pod, Job or fault event counts when its Job (or, without one, its pod) belongs to the run: a Job whose
pipeline events or pod labels (``run=<id>``) name the run, or, when nothing names any run for it, whose
name starts with ``<run_id>-``. A fault that names no pod and no Job counts (the history is the run's).
``ExperimentStarted`` counts with the run's id, ``ExperimentEnded`` of the same experiment with it.

**Elapsed** (``elapsed_seconds``): from the run's first event (normally its first ``PodStarted`` or
``RunStarted``, or ``ExperimentStarted``) to its last (normally its last ``PodExited``, ``JobFinished``
or ``ExperimentEnded``). Fault events do not extend it: a lasting fault may be healed after the run ended.

**Step computations.** Each ``TrainStep`` of a training attempt is one computation of its step; it
took from the attempt's previous ``TrainStep`` (or its ``TrainingStarted``, for its first step) to this
one. An attempt that never printed ``TrainingCompleted`` also has a *partial* computation: from its last
``TrainStep`` (or ``TrainingStarted``) to the first of its ``SigtermReceived``, a ``FaultInjected``
aimed at its pod, its ``PodExited`` (the end of the run when none) that is not earlier than that last
step. Checkpoint saves are not training: a computation's time excludes the part of it covered by a save,
the save's window being ``[CheckpointSaved - seconds, CheckpointSaved]`` (a background save may cover
parts of several computations; a computation's time is never negative).

**Productive** (``productive_seconds``): for a completed run, the time of each step's last computation
(by time) for the steps 1..N of the final model (N: ``TrainingCompleted.step``), the computation the
final model descends from. A run that did not complete has none: productive time 0.

Badput (:class:`harness.gameday.model.Badput`), in seconds:

- ``lost_progress``: the time of every other computation: steps computed again later (those after the
  last checkpoint before an attempt ended, which the next attempt recomputes), partial computations,
  and every computation of a run that did not complete. It follows the computations, not the faults,
  so two faults that ended one attempt lose its progress once.
- ``startup``: for each container attempt of the training Job, ``PodStarted`` to its
  ``TrainingStarted`` (to its ``PodExited``, or the end of the run, when it never started training):
  process start, imports, data loading, waiting for the training lease; less the part that another
  class already counts: the attempt's restores (window ``[CheckpointRestored - seconds,
  CheckpointRestored]``), checkpoint save windows and other attempts' step computations (a
  replacement starts up while the attempt it replaces finishes its step and saves its checkpoint).
  Other steps' start-up is ``other``.
- ``checkpoint_save``: the sum of the run's ``CheckpointSaved.seconds``.
- ``checkpoint_restore``: the sum of the run's ``CheckpointRestored.seconds``.
- ``scheduling_wait``: the part of the elapsed time when no container attempt of the run was running
  (between ``PodStarted`` and ``PodExited``, or the end of the run): waiting to be scheduled, restart
  back-off, the gaps between steps' pods. 0 when the history has no pod of the run.
- ``other``: elapsed less productive time and the classes above (the other pipeline steps, a training
  attempt's time after its last step, a killed container's time after its fault), never below 0: when
  time is counted twice (a replacement starting up while the old attempt saves its checkpoint) or clocks
  disagree, the classes may add up to more than the elapsed time, and ``other`` is then 0.

**Interruptions** come from :func:`harness.checks.interruptions.fault_outcomes`: an outcome that
``hit_training`` interrupts the training attempt it hit (the pod's latest attempt started at or
before the fault, as ``fault_outcomes`` finds it), unless that attempt had already completed training.
Several faults that hit one attempt make one interruption, measured from the first of them.

- ``recoveries``: each interruption's ``recovery_seconds`` (fault to the first step of the next
  attempt), in injection order; ``unrecovered``: interruptions without one.
- ``steps_lost``: the ``steps_lost`` of each interruption training recovered from, plus, for a run that
  did not complete, the highest step it reached (all its steps are lost; an interruption it never
  recovered from lies within them, so it is not counted again).
- ``faults``: the run's ``FaultInjected`` events counted by ``fault`` (the fault's kind).

**The night** (:func:`night_figures`): the runs' figures summed; the night's time no run covers
(``elapsed_seconds`` less the runs' elapsed, when positive) is added to ``scheduling_wait``;
``goodput`` = productive / ``elapsed_seconds`` (0 when that is 0); MTTR p50, p95 and max over every
run's ``recoveries`` by :func:`percentile` (nearest rank).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from harness.checks.interruptions import FaultOutcome, fault_outcomes
from harness.gameday.model import BADPUT_CLASSES, Badput, NightFigures, RunFigures
from harness.history.clock import HarnessClock
from harness.history.events import (
    CheckpointRestored,
    CheckpointSaved,
    Event,
    ExperimentEnded,
    ExperimentStarted,
    FaultHealed,
    FaultInjected,
    JobFinished,
    PodExited,
    PodStarted,
    SigtermReceived,
    TrainingCompleted,
    TrainingStarted,
    TrainStep,
    of_type,
)

__all__ = ["night_figures", "percentile", "run_figures"]

AttemptKey = tuple[str, int]  # (pod, attempt): one container attempt
Window = tuple[float, float]  # [start, end] on the harness's clock


# --- public API --------------------------------------------------------------------------------


def run_figures(events: Sequence[Event], *, run_id: str, completed: bool) -> RunFigures:
    """The figures of run ``run_id`` from a history that may also hold other runs' events.

    ``completed``: the run produced its final model (the caller knows the run's outcome). The classes
    follow the module's definitions; ``productive_seconds + badput.total()`` equals the elapsed time
    unless ``other`` had to be clamped at 0."""
    own = _own_events(events, run_id)
    clock = HarnessClock(own)
    window = _window(own, clock)
    elapsed = window[1] - window[0]
    training = _Training.of(own, clock, window)
    productive, lost = training.split(completed=completed)
    classes = {
        "startup": _startup(own, clock, window, training),
        "checkpoint_save": sum(e.seconds for e in of_type(own, CheckpointSaved)),
        "checkpoint_restore": sum(e.seconds for e in of_type(own, CheckpointRestored)),
        "lost_progress": lost,
        "scheduling_wait": _scheduling_wait(own, window),
    }
    classes["other"] = max(0.0, elapsed - productive - sum(classes.values()))
    interruptions = _interruptions(own, training)
    return RunFigures(
        run_id=run_id,
        completed=completed,
        elapsed_seconds=elapsed,
        productive_seconds=productive,
        badput=Badput(**classes),
        steps_lost=_steps_lost(interruptions, training, completed=completed),
        recoveries=tuple(o.recovery_seconds for o in interruptions if o.recovery_seconds is not None),
        unrecovered=sum(1 for o in interruptions if o.recovery_seconds is None),
        faults=dict(sorted(Counter(e.fault for e in of_type(own, FaultInjected)).items())),
    )


def night_figures(runs: Sequence[RunFigures], *, elapsed_seconds: float) -> NightFigures:
    """The night's figures over ``runs``; ``elapsed_seconds`` is the night's wall time.

    Sums the runs' figures; the night's time outside every run goes to ``scheduling_wait``
    (nothing of the pipeline was running); MTTR percentiles are nearest-rank over all recoveries."""
    uncovered = max(0.0, elapsed_seconds - sum(r.elapsed_seconds for r in runs))
    summed = _sum_badput(r.badput for r in runs)
    badput = Badput(**{**_classes(summed), "scheduling_wait": summed.scheduling_wait + uncovered})
    productive = sum(r.productive_seconds for r in runs)
    recoveries = [s for r in runs for s in r.recoveries]
    faults: Counter[str] = Counter()
    for r in runs:
        faults.update(r.faults)
    return NightFigures(
        runs_completed=sum(1 for r in runs if r.completed),
        runs_failed=sum(1 for r in runs if not r.completed),
        faults=dict(sorted(faults.items())),
        elapsed_seconds=elapsed_seconds,
        productive_seconds=productive,
        goodput=productive / elapsed_seconds if elapsed_seconds > 0 else 0.0,
        badput=badput,
        steps_lost=sum(r.steps_lost for r in runs),
        mttr_p50=percentile(recoveries, 50),
        mttr_p95=percentile(recoveries, 95),
        mttr_max=max(recoveries, default=None),
        unrecovered=sum(r.unrecovered for r in runs),
    )


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank ``q``-th percentile (``q`` in 0..100) of ``values``: the smallest value with at
    least ``q`` % of the values at or below it (the least value for ``q`` = 0). ``None`` when empty."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is not within 0..100")
    if not values:
        return None
    ordered = sorted(values)
    # Rounded first so that 95 % of 20 values is rank 19, not 20 from a float just above 19.
    rank = max(1, math.ceil(round(q * len(ordered) / 100, 9)))
    return ordered[rank - 1]


# --- which events are the run's -----------------------------------------------------------------


def _run_id_of(event: Event) -> str | None:
    """The run id a pipeline event (or ``ExperimentStarted``) names; ``None`` for other events."""
    value = getattr(event, "run_id", None)
    return value if isinstance(value, str) else None


def _owner(event: Event) -> str:
    """What an event is attributed to a run by: its Job, or its pod when it names no Job."""
    return event.job or event.pod


def _named_runs(events: Sequence[Event]) -> dict[str, set[str]]:
    """Owner (Job or pod) -> the run ids its pipeline events and pod labels name."""
    runs: dict[str, set[str]] = {}
    for e in events:
        named = _run_id_of(e)
        if isinstance(e, PodStarted):
            labels = dict(part.split("=", 1) for part in e.labels.split(",") if "=" in part)
            named = labels.get("run", named)
        if named is not None and _owner(e):
            runs.setdefault(_owner(e), set()).add(named)
    return runs


def _own_events(events: Sequence[Event], run_id: str) -> list[Event]:
    """The events of run ``run_id`` (see the module's docstring), in history order."""
    named = _named_runs(events)

    def owned(owner: str) -> bool:
        if owner in named:
            return run_id in named[owner]
        return owner.startswith(f"{run_id}-")

    faults = {e.fault_id for e in of_type(list(events), FaultInjected) if not _owner(e) or owned(_owner(e))}
    experiments = {e.experiment for e in of_type(list(events), ExperimentStarted) if e.run_id == run_id}
    own: list[Event] = []
    for e in events:
        if isinstance(e, ExperimentStarted | ExperimentEnded):
            keep = e.experiment in experiments and (not isinstance(e, ExperimentStarted) or e.run_id == run_id)
        elif isinstance(e, FaultInjected):
            keep = not _owner(e) or owned(_owner(e))
        elif isinstance(e, FaultHealed):
            keep = e.fault_id in faults  # a heal names no pod: it follows its fault
        elif isinstance(e, PodStarted | PodExited | JobFinished):
            keep = owned(_owner(e))
        else:
            keep = _run_id_of(e) == run_id
        if keep:
            own.append(e)
    return own


def _window(own: Sequence[Event], clock: HarnessClock) -> Window:
    """The run's elapsed window: its first to its last pod, pipeline or experiment event. Faults are
    left out: a lasting fault may be healed after the run ended."""
    times = [clock.time(e) for e in own if not isinstance(e, FaultInjected | FaultHealed)]
    if not times:
        return (0.0, 0.0)
    return (min(times), max(times))


# --- training: computations of steps ---------------------------------------------------------------


@dataclass(frozen=True)
class _Computation:
    """One computation of ``step`` (``None``: a partial step, cut short) on an attempt: its window and
    its time net of checkpoint saves."""

    attempt: AttemptKey
    step: int | None
    start: float
    end: float
    seconds: float


@dataclass
class _Training:
    """The run's training attempts and their step computations."""

    started: dict[AttemptKey, float] = field(default_factory=dict)  # TrainingStarted, harness clock
    jobs: set[str] = field(default_factory=set)  # the training Job(s)
    saves: list[Window] = field(default_factory=list)  # checkpoint saves, harness clock
    completed: set[AttemptKey] = field(default_factory=set)  # attempts that printed TrainingCompleted
    computations: list[_Computation] = field(default_factory=list)
    final_step: int = 0  # the final model's step: TrainingCompleted's, else the highest step reached
    highest_step: int = 0

    @classmethod
    def of(cls, own: Sequence[Event], clock: HarnessClock, window: Window) -> _Training:
        training = cls(saves=[(clock.time(e) - e.seconds, clock.time(e)) for e in of_type(list(own), CheckpointSaved)])
        for e in of_type(list(own), TrainingStarted):
            key = (e.pod, e.attempt)
            training.started.setdefault(key, clock.time(e))
            if e.job:
                training.jobs.add(e.job)
        training.completed = {(e.pod, e.attempt) for e in of_type(list(own), TrainingCompleted)}
        for key, started in training.started.items():
            training.computations += _computations(own, clock, key, started, training.saves,
                                                   partial=key not in training.completed, window=window)
        steps = [e.step for e in of_type(list(own), TrainStep)]
        training.highest_step = max(steps, default=0)
        finals = [e.step for e in of_type(list(own), TrainingCompleted)]
        training.final_step = max(finals, default=training.highest_step)
        return training

    def split(self, *, completed: bool) -> tuple[float, float]:
        """(productive, lost) seconds: the final model's last computation of each step is productive."""
        kept = self._kept() if completed else set()
        productive = sum(c.seconds for i, c in enumerate(self.computations) if i in kept)
        lost = sum(c.seconds for i, c in enumerate(self.computations) if i not in kept)
        return productive, lost

    def _kept(self) -> set[int]:
        """Indices of the computations the final model descends from: each step's latest one."""
        latest: dict[int, int] = {}
        for i, c in enumerate(self.computations):
            if c.step is None or c.step > self.final_step:
                continue  # a partial step, or a step the final model does not have
            if c.step not in latest or c.end >= self.computations[latest[c.step]].end:
                latest[c.step] = i
        return set(latest.values())


def _computations(own: Sequence[Event], clock: HarnessClock, key: AttemptKey, started: float,
                  saves: Sequence[Window], *, partial: bool, window: Window) -> list[_Computation]:
    """The step computations of one training attempt, in order, and its partial one when ``partial``."""
    steps = sorted((clock.time(e), e.step) for e in of_type(list(own), TrainStep) if (e.pod, e.attempt) == key)
    out: list[_Computation] = []
    previous = started
    for end, step in steps:
        out.append(_Computation(attempt=key, step=step, start=previous, end=end,
                                seconds=_uncovered((previous, end), saves)))
        previous = max(previous, end)
    if partial:
        cut = _cut_short_at(own, clock, key, previous, window)
        out.append(_Computation(attempt=key, step=None, start=previous, end=cut,
                                seconds=_uncovered((previous, cut), saves)))
    return out


def _cut_short_at(own: Sequence[Event], clock: HarnessClock, key: AttemptKey, last: float,
                  window: Window) -> float:
    """When an attempt that never completed training stopped computing after its last step at ``last``:
    the first of its SIGTERM report, a fault aimed at its pod and its exit that is not before ``last``."""
    pod = key[0]
    candidates = [clock.time(e) for e in of_type(list(own), SigtermReceived) if (e.pod, e.attempt) == key]
    candidates += [e.ts for e in of_type(list(own), FaultInjected) if (e.pod or e.target) == pod]
    exits = [e.ts for e in of_type(list(own), PodExited) if (e.pod, e.attempt) == key]
    candidates += exits or [window[1]]
    return min((t for t in candidates if t >= last), default=last)


def _uncovered(window: Window, covered: Iterable[Window]) -> float:
    """Seconds of ``window`` outside every window of ``covered`` (which may overlap); never negative."""
    start, end = window
    if end <= start:
        return 0.0
    clipped = [(max(start, a), min(end, b)) for a, b in covered if a < end and b > start]
    return max(0.0, end - start - _union_length(clipped))


# --- the other classes ---------------------------------------------------------------------------


def _startup(own: Sequence[Event], clock: HarnessClock, window: Window, training: _Training) -> float:
    """Pod start to training start of every container attempt of the training Job, less the time other
    classes already count: its restores, checkpoint saves, and other attempts' step computations (a
    replacement starts up while the attempt it replaces still finishes its step and saves)."""
    exits = {(e.pod, e.attempt): e.ts for e in of_type(list(own), PodExited)}
    restores = [((e.pod, e.attempt), (clock.time(e) - e.seconds, clock.time(e)))
                for e in of_type(list(own), CheckpointRestored)]
    total = 0.0
    for pod in of_type(list(own), PodStarted):
        key = (pod.pod, pod.attempt)
        if pod.job not in training.jobs and key not in training.started:
            continue
        end = training.started.get(key, exits.get(key, window[1]))
        covered = [w for k, w in restores if k == key] + training.saves
        covered += [(c.start, c.end) for c in training.computations if c.attempt != key]
        total += _uncovered((pod.ts, end), covered)
    return total


def _scheduling_wait(own: Sequence[Event], window: Window) -> float:
    """The part of ``window`` no container attempt of the run covers (0 when it has no pods)."""
    starts = of_type(list(own), PodStarted)
    if not starts:
        return 0.0
    exits = {(e.pod, e.attempt): e.ts for e in of_type(list(own), PodExited)}
    running = [(max(window[0], s.ts), min(window[1], exits.get((s.pod, s.attempt), window[1]))) for s in starts]
    return max(0.0, (window[1] - window[0]) - _union_length(running))


def _union_length(intervals: Iterable[Window]) -> float:
    """The length of the union of ``intervals``."""
    total, reach = 0.0, -math.inf
    for start, end in sorted(intervals):
        if end <= reach:
            continue
        total += end - max(start, reach)
        reach = end
    return total


# --- interruptions: steps lost and recoveries ----------------------------------------------------


def _interruptions(own: Sequence[Event], training: _Training) -> list[FaultOutcome]:
    """One outcome per training attempt that faults interrupted: the first fault that hit it (see the
    module's docstring), in injection order."""
    starts = of_type(list(own), PodStarted)
    first: dict[AttemptKey, FaultOutcome] = {}
    for fault, outcome in zip(of_type(list(own), FaultInjected), fault_outcomes(own), strict=True):
        if not outcome.hit_training:
            continue
        hit = _hit_attempt(fault, starts)
        if hit is None or hit in training.completed:
            continue  # training of that attempt was already done: the fault cost no training
        if hit not in first or outcome.injected_at < first[hit].injected_at:
            first[hit] = outcome
    return sorted(first.values(), key=lambda o: o.injected_at)


def _hit_attempt(fault: FaultInjected, starts: Sequence[PodStarted]) -> AttemptKey | None:
    """The container attempt a fault hit, found as ``fault_outcomes`` finds it: its pod's latest
    attempt started at or before the fault."""
    pod = fault.pod or fault.target
    hit = [e for e in starts if e.pod == pod and e.ts <= fault.ts]
    return (pod, hit[-1].attempt) if hit else None


def _steps_lost(interruptions: Sequence[FaultOutcome], training: _Training, *, completed: bool) -> int:
    recovered = sum(o.steps_lost or 0 for o in interruptions if o.recovery_seconds is not None)
    return recovered + (0 if completed else training.highest_step)


# --- sums --------------------------------------------------------------------------------------------


def _classes(badput: Badput) -> dict[str, float]:
    return {name: float(getattr(badput, name)) for name in BADPUT_CLASSES}


def _sum_badput(badputs: Iterable[Badput]) -> Badput:
    totals = dict.fromkeys(BADPUT_CLASSES, 0.0)
    for b in badputs:
        for name, seconds in _classes(b).items():
            totals[name] += seconds
    return Badput(**totals)
