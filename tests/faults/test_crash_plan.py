"""The crash-point sweep's plan: drawn from the seed, within the declared points, described and read back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.faults.crash_plan import CrashKill, describe, draw_plan, parse_detail, parse_points

POINTS = parse_points(["ingest.between-parts", "features.between-shards", "train.model-published:1",
                       "register.before-alias:1"], max_occurrence=3)


def test_points_take_their_own_bound_or_the_default():
    assert POINTS == {"ingest.between-parts": 3, "features.between-shards": 3, "train.model-published": 1,
                      "register.before-alias": 1}


@pytest.mark.parametrize("entry", ["a:0", "a:x", "a#1", "", "a,b"])
def test_a_malformed_point_is_refused(entry):
    with pytest.raises(ValueError, match="crash point"):
        parse_points([entry], max_occurrence=3)


def test_too_many_kills_for_the_points_are_refused():
    with pytest.raises(ValueError, match="do not fit"):
        draw_plan(1, {"a": 1, "b": 2}, kills=4, forced_share=0.5)


@given(seed=st.integers(0, 2**32), kills=st.integers(1, 8), share=st.floats(0, 1))
def test_the_plan_is_a_pure_function_of_the_seed_within_the_points(seed, kills, share):
    plan = draw_plan(seed, POINTS, kills=kills, forced_share=share)
    assert plan == draw_plan(seed, POINTS, kills=kills, forced_share=share)
    assert len({k.armed for k in plan}) == len(plan) == kills
    assert all(1 <= k.occurrence <= POINTS[k.point] for k in plan)
    if kills <= len(POINTS):  # distinct points first
        assert len({k.point for k in plan}) == kills
    if share == 0:
        assert not any(k.forced for k in plan)


def test_different_seeds_draw_different_plans():
    plans = {draw_plan(seed, POINTS, kills=3, forced_share=0.5) for seed in range(20)}
    assert len(plans) > 5


@pytest.mark.parametrize("forced", [True, False])
def test_a_kill_is_read_back_from_its_fault_detail(forced):
    kill = CrashKill(point="train.checkpoint.between-state-and-manifest", occurrence=2, forced=forced,
                     grace_period_seconds=30)
    detail = f"deleted pod p on node-a at {describe(kill)}"
    assert parse_detail(detail) == ("train.checkpoint.between-state-and-manifest", 2, forced)
    assert parse_detail("deleted pod p on node-a (SIGKILL at once)") is None
