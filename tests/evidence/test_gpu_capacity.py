"""GPU capacity arithmetic: idle per node, stranded GPUs and the fragmenting fill."""

from __future__ import annotations

import random

import pytest

from harness.evidence.gpu_capacity import (
    GpuNode,
    GpuPod,
    format_counts,
    fragmenting_fill,
    idle_per_node,
    parse_counts,
    stranded,
)


def test_idle_is_allocatable_minus_bound_requests_on_usable_gpu_nodes() -> None:
    nodes = [GpuNode(name="a", allocatable=8), GpuNode(name="b", allocatable=8),
             GpuNode(name="c", allocatable=8, usable=False), GpuNode(name="cpu", allocatable=0)]
    pods = [GpuPod(name="f1", gpus=3, node="a"), GpuPod(name="f2", gpus=2, node="a"),
            GpuPod(name="f3", gpus=4, node="b"), GpuPod(name="daily", gpus=6)]
    assert idle_per_node(nodes, pods) == {"a": 3, "b": 4}


def test_stranded_counts_idle_gpus_on_nodes_no_pending_request_fits() -> None:
    assert stranded({"a": 5, "b": 5}, [6]) == 10  # fragmented: 10 idle, 6 wanted, none usable
    assert stranded({"a": 5, "b": 6}, [6]) == 5  # b fits the request; a's 5 are stranded
    assert stranded({"a": 5, "b": 2}, [6, 3]) == 2  # a fits the 3-GPU pod
    assert stranded({"a": 5, "b": 5}, []) == 0  # nothing pending: spare, not stranded
    assert stranded({"a": 5}, [0]) == 0  # a pending pod without GPUs asks for none


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("per_node", [1, 2, 3])
def test_the_fill_leaves_enough_idle_in_total_but_not_on_any_node(seed: int, per_node: int) -> None:
    capacity = {"node-a": 8, "node-b": 8, "node-c": 7}
    fill = fragmenting_fill(capacity, request=6, rng=random.Random(seed), max_pods_per_node=per_node)
    left = {n: capacity[n] - sum(fill.get(n, [])) for n in capacity}
    assert sum(left.values()) >= 6
    assert max(left.values()) < 6
    assert all(size > 0 and len(sizes) <= per_node for sizes in fill.values() for size in sizes)


def test_the_fill_draws_mixed_shapes_from_its_seed_alone() -> None:
    draws = {str(fragmenting_fill({"a": 8, "b": 8, "c": 8}, request=6, rng=random.Random(s), max_pods_per_node=2))
             for s in range(30)}
    assert len(draws) > 3
    same = [fragmenting_fill({"a": 8, "b": 8}, request=6, rng=random.Random(7)) for _ in range(2)]
    assert same[0] == same[1]


def test_a_fill_that_cannot_fragment_is_refused() -> None:
    with pytest.raises(ValueError, match="no node has 9"):
        fragmenting_fill({"a": 8, "b": 8}, request=9, rng=random.Random(1))
    with pytest.raises(ValueError, match="cannot hold 6 idle"):
        fragmenting_fill({"a": 8}, request=6, rng=random.Random(1))  # one node: idle means fitting


def test_counts_round_trip_through_their_event_form() -> None:
    assert parse_counts(format_counts({"ns/p-1": 6, "node-a": 0})) == {"ns/p-1": 6, "node-a": 0}
    assert parse_counts("") == {}
    with pytest.raises(ValueError, match="malformed"):
        parse_counts("node-a")
