"""Draw a night's schedule from a plan and a seed, with small composable generators (after Jepsen's).

A generator is a function of a random stream that yields *candidates*: a
catalogue entry and a position on the run's training axis (training steps).
The pieces compose: :func:`mix` draws entries by weight, :func:`stagger` places
them at random gaps, :func:`time_limit` ends them at a step, :func:`once` keeps
the first, :func:`phases` runs generators one after another. :func:`draw_schedule`
builds each run's generator from the plan, aims every candidate at a pipeline
step, and keeps only candidates that respect the plan's constraints and the
faults' exclusion groups (:func:`admissible`).

Everything is a pure function of the seed and the plan: no clock, no global
random state. Each run draws from its own stream (seeded by the night's seed and
the run's index), so a longer night keeps the runs of a shorter one.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

from harness.gameday.model import (
    HEAL_AT_END,
    INSTANT,
    CatalogueEntry,
    Constraints,
    GameDayPlan,
    ParamRange,
    ParamValue,
    Schedule,
    ScheduledFault,
    ScheduledRun,
    Trigger,
)

__all__ = [
    "Candidate",
    "Generator",
    "admissible",
    "draw_schedule",
    "groups_of",
    "interval",
    "mix",
    "once",
    "phases",
    "run_count",
    "stagger",
    "time_limit",
]


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """A fault the generators propose: ``entry`` at training step ``step`` of the run."""

    entry: CatalogueEntry
    step: int


Generator = Callable[[random.Random], Iterator[Candidate]]


def mix(entries: Sequence[CatalogueEntry]) -> Generator:
    """Endless candidates, each entry drawn by its weight; all at step 0 (``stagger`` places them)."""
    weighted = [e for e in entries if e.weight > 0]

    def generate(rng: random.Random) -> Iterator[Candidate]:
        if not weighted:
            return
        weights = [e.weight for e in weighted]
        while True:
            yield Candidate(entry=rng.choices(weighted, weights=weights)[0], step=0)

    return generate


def stagger(inner: Generator, *, start: int, min_gap: int, max_gap: int) -> Generator:
    """``inner``'s candidates placed from ``start`` on, each a random ``[min_gap, max_gap]`` steps after
    the one before (the first one a random gap after ``start``, so a run never opens with a fault at once)."""
    if min_gap < 1 or max_gap < min_gap:
        raise ValueError(f"stagger needs 1 <= min_gap <= max_gap, got {min_gap}, {max_gap}")

    def generate(rng: random.Random) -> Iterator[Candidate]:
        at = start
        for candidate in inner(rng):
            at += rng.randint(min_gap, max_gap)
            yield Candidate(entry=candidate.entry, step=at)

    return generate


def time_limit(inner: Generator, *, end: int) -> Generator:
    """``inner``'s candidates before step ``end``; stops at the first one at or after it."""

    def generate(rng: random.Random) -> Iterator[Candidate]:
        for candidate in inner(rng):
            if candidate.step >= end:
                return
            yield candidate

    return generate


def once(inner: Generator) -> Generator:
    """Only ``inner``'s first candidate."""

    def generate(rng: random.Random) -> Iterator[Candidate]:
        for candidate in inner(rng):
            yield candidate
            return

    return generate


def phases(*inners: Generator) -> Generator:
    """Each generator's candidates in turn, each one until it ends."""

    def generate(rng: random.Random) -> Iterator[Candidate]:
        for inner in inners:
            yield from inner(rng)

    return generate


def groups_of(kind: str, step: str) -> tuple[str, ...]:
    """The exclusion groups a fault of ``kind`` aimed at ``step`` holds (as its Fault's plan would):
    one proxy fault on the S3 link at a time, one node fault at a time, drain or spot preemption (the
    cluster must keep a node to reschedule on; both hold ``node:<name>`` in their plans, but the node is
    only known when they fire), one run-launching fault at a time, backfill storm or registry race (both
    launch ``backfill-<date>`` runs over the days before the run's date, in the run's bucket, so two would
    launch the same run ids), one checkpoint corruption at a time (its plan holds
    ``checkpoint:<state key>``), and one fault per step's pod for the rest, the corruption included (it
    kills the training pod, as a delete does)."""
    return {
        "network-delay": ("proxy:s3",),
        "storage-throttle": ("proxy:s3",),
        "node-drain": ("node",),
        "spot-preemption": ("node",),
        "backfill-storm": ("backfill",),
        "registry-race": ("backfill",),
        "checkpoint-corruption": ("checkpoint", f"pod:{step}"),
    }.get(kind, (f"pod:{step}",))


Position = tuple[int, float]
"""Where a fault fires, in pipeline order: (index of its step among the workload's steps, offset:
the training step on the training step, seconds after the pod started on the others)."""


def interval(fault: ScheduledFault, step_order: Sequence[str], train_step: str) -> tuple[Position, Position]:
    """When ``fault`` is active, as positions: from where it fires to where it is healed (the same for
    an instant fault; the end of the run for ``HEAL_AT_END``)."""
    index = step_order.index(fault.at.step)
    start: Position = (index, float(fault.at.training_step if fault.at.step == train_step else fault.at.seconds))
    if fault.heal_after_step == INSTANT:
        return start, start
    if fault.heal_after_step == HEAL_AT_END:
        return start, (len(step_order), 0.0)
    return start, (step_order.index(train_step), float(fault.heal_after_step))


def admissible(fault: ScheduledFault, kept: Sequence[ScheduledFault], constraints: Constraints,
               step_order: Sequence[str], train_step: str) -> bool:
    """Whether ``fault`` may join ``kept`` (the run's faults so far) without breaking a constraint:
    the run's fault budget, the quiet start and least gap on the training step, at most
    ``max_active`` at once, and no two active faults sharing an exclusion group."""
    if len(kept) >= constraints.max_faults_per_run:
        return False
    if fault.at.step == train_step:
        if fault.at.training_step < constraints.quiet_start_steps:
            return False
        on_train = [k.at.training_step for k in kept if k.at.step == train_step]
        if any(abs(fault.at.training_step - s) < constraints.min_gap_steps for s in on_train):
            return False
    start, end = interval(fault, step_order, train_step)
    overlapping = [k for k in kept if _overlaps((start, end), interval(k, step_order, train_step))]
    if any(set(k.groups) & set(fault.groups) for k in overlapping):
        return False
    # At most max_active at any moment: the most faults overlapping at any start inside this interval.
    points = [start, *(interval(k, step_order, train_step)[0] for k in overlapping)]
    for point in points:
        if start <= point <= end:
            active = 1 + sum(1 for k in overlapping if _covers(interval(k, step_order, train_step), point))
            if active > constraints.max_active:
                return False
    return True


def _overlaps(a: tuple[Position, Position], b: tuple[Position, Position]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def _covers(span: tuple[Position, Position], point: Position) -> bool:
    return span[0] <= point <= span[1]


def run_count(duration_seconds: float, run_seconds: float) -> int:
    """How many runs a night of ``duration_seconds`` draws: enough back-to-back runs of the expected
    length to fill it (the night stops starting runs when its time is up)."""
    return max(1, math.ceil(duration_seconds / max(run_seconds, 1.0)))


def draw_schedule(plan: GameDayPlan, *, seed: int, duration_seconds: float) -> Schedule:
    """The night's schedule: ``run_count`` runs over the plan's dates, each with its faults drawn
    by the plan's generator and kept only where the constraints allow, in firing order."""
    runs = tuple(_draw_run(plan, seed=seed, index=i)
                 for i in range(1, run_count(duration_seconds, plan.mix.run_seconds) + 1))
    return Schedule(seed=seed, source=plan.source, duration_seconds=float(duration_seconds),
                    train_steps=plan.train_steps, train_step_name=plan.train_step_name, runs=runs)


def run_generator(plan: GameDayPlan) -> Generator:
    """One run's candidates: nothing in the quiet start, then the catalogue mixed and staggered by
    at least the least gap, until the run's last training step."""
    c = plan.constraints
    gap = max(1, c.min_gap_steps)
    spread = max(gap, plan.train_steps // max(1, c.max_faults_per_run))
    return time_limit(stagger(mix(plan.catalogue), start=c.quiet_start_steps - gap, min_gap=gap, max_gap=spread),
                      end=plan.train_steps)


def _draw_run(plan: GameDayPlan, *, seed: int, index: int) -> ScheduledRun:
    rng = random.Random(_run_seed(seed, index))
    date = plan.mix.dates[(index - 1) % len(plan.mix.dates)]
    if rng.random() < plan.mix.fault_free_share:
        return ScheduledRun(index=index, date=date)
    step_order = plan.step_order
    kept: list[ScheduledFault] = []
    for candidate in run_generator(plan)(rng):
        fault = _aim(candidate, rng, plan, fault_id=f"r{index}-f{len(kept) + 1}")
        if admissible(fault, kept, plan.constraints, step_order, plan.train_step_name):
            kept.append(fault)
    kept.sort(key=lambda f: interval(f, step_order, plan.train_step_name)[0])
    # Ids follow firing order, so the schedule reads top to bottom as the night unfolds.
    renamed = tuple(replace(f, fault_id=f"r{index}-f{n}") for n, f in enumerate(kept, start=1))
    return ScheduledRun(index=index, date=date, faults=renamed)


def _aim(candidate: Candidate, rng: random.Random, plan: GameDayPlan, *, fault_id: str) -> ScheduledFault:
    """The candidate aimed at one of its entry's steps, with its parameters and hold drawn."""
    entry = candidate.entry
    steps = dict(entry.steps) or {plan.train_step_name: 1.0}
    names = sorted(steps)
    step = rng.choices(names, weights=[steps[n] for n in names])[0]
    params = tuple((name, _draw_param(rng, entry.params[name])) for name in sorted(entry.params))
    if step == plan.train_step_name:
        at = Trigger(step=step, training_step=candidate.step)
        from_step = candidate.step
    else:
        low, high = entry.seconds
        at = Trigger(step=step, seconds=round(rng.uniform(low, high), 2))
        # A lasting fault aimed at a step before training holds for its steps from training's start.
        from_step = 0
    heal = _draw_heal(rng, entry, from_step=from_step, train_steps=plan.train_steps,
                      after_training=plan.step_order.index(step) > plan.step_order.index(plan.train_step_name))
    return ScheduledFault(fault_id=fault_id, entry=entry.name, kind=entry.kind, at=at, heal_after_step=heal,
                          params=params, groups=groups_of(entry.kind, step))


def _draw_heal(rng: random.Random, entry: CatalogueEntry, *, from_step: int, train_steps: int,
               after_training: bool) -> int:
    low, high = entry.hold_steps
    if (low, high) == (0, 0):
        return INSTANT
    if low == HEAL_AT_END or after_training:
        return HEAL_AT_END
    heal = from_step + rng.randint(low, max(low, high))
    return HEAL_AT_END if heal >= train_steps else heal


def _draw_param(rng: random.Random, spec: ParamRange) -> ParamValue:
    if spec.choices:
        return spec.choices[rng.randrange(len(spec.choices))]
    value = rng.uniform(spec.low, spec.high)
    # Rounded so schedule.json stays readable and exact across platforms' float printing.
    return round(value) if spec.integer else round(value, 3)


def _run_seed(seed: int, index: int) -> int:
    # hashlib, not hash(): hash() is salted per process, and a replay runs in another one.
    digest = hashlib.sha256(f"gameday\0{seed}\0run\0{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big")
