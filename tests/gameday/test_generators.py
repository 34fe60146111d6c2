"""The schedule generators: deterministic from the seed, time-limited, and never breaking a constraint."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.gameday.generators import (
    Candidate,
    admissible,
    draw_schedule,
    interval,
    mix,
    once,
    phases,
    run_count,
    stagger,
    time_limit,
)
from harness.gameday.model import (
    HEAL_AT_END,
    INSTANT,
    CatalogueEntry,
    Constraints,
    GameDayPlan,
    Schedule,
    ScheduledFault,
    Trigger,
    WorkloadMix,
)
from harness.gameday.plan_file import load_gameday
from harness.gameday.schedule_file import schedule_text
from harness.workload.reference import reference_workload

STEPS = ("ingest", "validate", "features", "train", "evaluate", "register")


def _plan(**constraints: int) -> GameDayPlan:
    return replace(load_gameday(None, workload=reference_workload()).plan,
                   constraints=Constraints(**constraints) if constraints else Constraints())


def _take(gen: object, n: int, seed: int = 0) -> list[Candidate]:
    out = []
    for candidate in gen(random.Random(seed)):  # type: ignore[operator]
        out.append(candidate)
        if len(out) == n:
            break
    return out


A = CatalogueEntry(name="a", kind="pod-delete", weight=1)
B = CatalogueEntry(name="b", kind="network-delay", weight=3, hold_steps=(10, 20))


def test_mix_draws_by_weight_and_skips_zero_weights() -> None:
    zero = CatalogueEntry(name="zero", kind="node-drain", weight=0)
    drawn = [c.entry.name for c in _take(mix([A, B, zero]), 2000)]
    assert "zero" not in drawn
    assert 0.7 < drawn.count("b") / len(drawn) < 0.8  # weight 3 of 4


def test_stagger_places_at_increasing_random_gaps_from_start() -> None:
    steps = [c.step for c in _take(stagger(mix([A]), start=100, min_gap=5, max_gap=9), 50)]
    gaps = [b - a for a, b in zip([100, *steps], steps, strict=False)]
    assert all(5 <= g <= 9 for g in gaps)
    assert len(set(gaps)) > 1


def test_time_limit_once_and_phases_compose() -> None:
    limited = time_limit(stagger(mix([A]), start=0, min_gap=10, max_gap=10), end=45)
    assert [c.step for c in _take(limited, 100)] == [10, 20, 30, 40]
    assert [c.step for c in _take(once(limited), 100)] == [10]
    both = phases(once(limited), time_limit(stagger(mix([B]), start=200, min_gap=1, max_gap=1), end=203))
    assert [(c.entry.name, c.step) for c in _take(both, 100)] == [("a", 10), ("b", 201), ("b", 202)]


def test_stagger_refuses_a_gap_that_never_advances() -> None:
    with pytest.raises(ValueError, match="min_gap"):
        stagger(mix([A]), start=0, min_gap=0, max_gap=3)


def test_same_seed_same_schedule_byte_for_byte_and_another_seed_differs() -> None:
    plan = _plan()
    first = schedule_text(draw_schedule(plan, seed=11, duration_seconds=900))
    assert first == schedule_text(draw_schedule(plan, seed=11, duration_seconds=900))
    assert first != schedule_text(draw_schedule(plan, seed=12, duration_seconds=900))


def test_a_longer_night_keeps_the_runs_of_a_shorter_one() -> None:
    plan = _plan()
    short = draw_schedule(plan, seed=3, duration_seconds=120)
    long = draw_schedule(plan, seed=3, duration_seconds=600)
    assert long.runs[: len(short.runs)] == short.runs


def test_run_count_fills_the_duration() -> None:
    assert run_count(600, 60) == 10
    assert run_count(601, 60) == 11
    assert run_count(10, 60) == 1


def test_fault_free_share_one_draws_no_faults() -> None:
    plan = _plan()
    plan = replace(plan, mix=WorkloadMix(fault_free_share=1.0))
    assert all(not r.faults for r in draw_schedule(plan, seed=1, duration_seconds=600).runs)


def _fault(fid: str, step: str, at: int, heal: int, groups: tuple[str, ...], seconds: float = 0.0) -> ScheduledFault:
    return ScheduledFault(fault_id=fid, entry=fid, kind="pod-delete", heal_after_step=heal, groups=groups,
                          at=Trigger(step=step, training_step=at if step == "train" else 0, seconds=seconds))


def test_admissible_refuses_each_broken_constraint() -> None:
    c = Constraints(min_gap_steps=50, max_active=2, quiet_start_steps=40, max_faults_per_run=3)
    held = _fault("x", "train", 100, 300, ("proxy:s3",))
    assert admissible(_fault("ok", "train", 200, INSTANT, ("pod:train",)), [held], c, STEPS, "train")
    assert not admissible(_fault("quiet", "train", 39, INSTANT, ()), [], c, STEPS, "train")
    assert not admissible(_fault("gap", "train", 120, INSTANT, ()), [held], c, STEPS, "train")
    assert not admissible(_fault("group", "train", 250, 400, ("proxy:s3",)), [held], c, STEPS, "train")
    after = _fault("late", "train", 400, HEAL_AT_END, ("node",))
    assert not admissible(_fault("three", "register", 0, INSTANT, ("pod:register",), seconds=1.0),
                          [held, after, _fault("y", "evaluate", 0, HEAL_AT_END, ("backfill",), 1.0)], c, STEPS, "train")
    assert not admissible(_fault("budget", "evaluate", 0, INSTANT, ()),
                          [held, _fault("p", "train", 500, INSTANT, ()), _fault("q", "ingest", 0, INSTANT, ())],
                          c, STEPS, "train")


def test_interval_orders_positions_by_pipeline_step() -> None:
    before = _fault("v", "validate", 0, 100, ("node",), seconds=2.0)
    start, end = interval(before, STEPS, "train")
    assert start == (1, 2.0)
    assert end == (3, 100.0)
    assert interval(_fault("e", "evaluate", 0, HEAL_AT_END, (), 1.0), STEPS, "train")[1] == (len(STEPS), 0.0)


def _check_constraints(schedule: Schedule, c: Constraints) -> None:
    for run in schedule.runs:
        assert len(run.faults) <= c.max_faults_per_run
        spans = [interval(f, STEPS, "train") for f in run.faults]
        assert spans == sorted(spans, key=lambda s: s[0])  # firing order
        on_train = sorted(f.at.training_step for f in run.faults if f.at.step == "train")
        assert all(s >= c.quiet_start_steps for s in on_train)
        assert all(s < schedule.train_steps for s in on_train)  # the time limit: nothing past the last step
        assert all(b - a >= c.min_gap_steps for a, b in itertools.pairwise(on_train))
        for i, (f, span) in enumerate(zip(run.faults, spans, strict=True)):
            for g, other in zip(run.faults[i + 1:], spans[i + 1:], strict=True):
                if span[0] <= other[1] and other[0] <= span[1]:
                    assert not set(f.groups) & set(g.groups), (f, g)
            active = sum(1 for s in spans if s[0] <= span[0] <= s[1])
            assert active <= c.max_active
            if f.heal_after_step > 0:
                assert f.heal_after_step < schedule.train_steps


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    duration=st.floats(min_value=30, max_value=3600),
    min_gap=st.integers(min_value=1, max_value=200),
    max_active=st.integers(min_value=1, max_value=4),
    quiet=st.integers(min_value=0, max_value=500),
    per_run=st.integers(min_value=1, max_value=6),
)
def test_drawn_schedules_never_break_a_constraint(seed: int, duration: float, min_gap: int, max_active: int,
                                                  quiet: int, per_run: int) -> None:
    c = Constraints(min_gap_steps=min_gap, max_active=max_active, quiet_start_steps=quiet, max_faults_per_run=per_run)
    plan = _plan(min_gap_steps=min_gap, max_active=max_active, quiet_start_steps=quiet, max_faults_per_run=per_run)
    schedule = draw_schedule(plan, seed=seed, duration_seconds=duration)
    assert len(schedule.runs) == run_count(duration, plan.mix.run_seconds)
    _check_constraints(schedule, c)
    assert schedule_text(schedule) == schedule_text(draw_schedule(plan, seed=seed, duration_seconds=duration))


def test_the_default_night_mixes_kinds_and_aims_beyond_training() -> None:
    schedule = draw_schedule(_plan(), seed=1, duration_seconds=1200)
    faults = [f for r in schedule.runs for f in r.faults]
    assert {f.kind for f in faults} >= {"pod-delete", "network-delay", "storage-throttle", "node-drain"}
    assert any(f.at.step != "train" for f in faults)
    assert any(len(r.faults) >= 2 for r in schedule.runs)


# --- the kinds a team adds: node faults and run-launching faults exclude each other ---------------------

_LOOSE = Constraints(min_gap_steps=20, max_active=4, quiet_start_steps=0, max_faults_per_run=6)


def _overlaps_between(schedule: Schedule, one: str, other: str) -> int:
    """How many pairs of a ``one`` fault and an ``other`` fault of one run are active at once."""
    count = 0
    for run in schedule.runs:
        for f, g in itertools.permutations(run.faults, 2):
            if f.kind == one and g.kind == other:
                a, b = interval(f, STEPS, "train"), interval(g, STEPS, "train")
                count += a[0] <= b[1] and b[0] <= a[1]
    return count


def _pair_plan(one: str, other: str) -> GameDayPlan:
    """Two long-lasting kinds, drawn equally often, with room for four faults at once."""
    entries = tuple(CatalogueEntry(name=kind, kind=kind, hold_steps=(60, 200)) for kind in (one, other))
    return replace(_plan(), catalogue=entries, constraints=_LOOSE)


@pytest.mark.parametrize(("one", "other"), [("spot-preemption", "node-drain"),
                                            ("registry-race", "backfill-storm")])
def test_faults_that_share_a_group_are_never_active_together(one: str, other: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _pair_plan(one, other)
    schedule = draw_schedule(plan, seed=4, duration_seconds=3000)
    assert any({one, other} <= {f.kind for f in r.faults} for r in schedule.runs)  # both drawn into one run
    assert _overlaps_between(schedule, one, other) == 0
    # The same plan with the two kinds in groups of their own overlaps them: the assertion above can fail.
    from harness.gameday import generators
    own = generators.groups_of
    monkeypatch.setattr(generators, "groups_of", lambda kind, step: (kind,) if kind == one else own(kind, step))
    assert _overlaps_between(draw_schedule(plan, seed=4, duration_seconds=3000), one, other) > 0


@pytest.mark.parametrize(("kind", "groups"), [
    ("spot-preemption", ("node",)),  # as node-drain: the cluster keeps a node to reschedule on
    ("registry-race", ("backfill",)),  # as backfill-storm: both launch backfill-<date> runs before the run's date
    ("checkpoint-corruption", ("checkpoint", "pod:train")),  # one at a time; it kills training as a delete does
])
def test_the_added_kinds_hold_the_groups_of_what_they_share(kind: str, groups: tuple[str, ...]) -> None:
    from harness.gameday.generators import groups_of

    assert groups_of(kind, "train") == groups
