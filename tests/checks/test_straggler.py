"""``straggler-detected`` on hand-built histories: a measured, attributed slowdown passes; an unseen one fails;
no fault or no steps to measure is unknown."""

from __future__ import annotations

from harness.checks.straggler import NAME, check_straggler, seconds_per_step
from harness.history.events import Event, FaultHealed, FaultInjected, PodStarted, TrainStep

RUN = "exp-1"
POD = "exp-1-train-a"


def _history(*, slow_every: float, fast_every: float = 0.1, window: float = 10.0, steps_pod: str = POD,
             steps_in_window: bool = True) -> list[Event]:
    """Steps every ``fast_every`` s for 5 s, a straggler window of ``window`` s with steps every ``slow_every`` s,
    then fast steps again."""
    events: list[Event] = [PodStarted(ts=99.0, pod=POD, job="exp-1-train", node="node-b", pid=1)]
    if steps_pod != POD:
        events.append(PodStarted(ts=99.0, pod=steps_pod, job="exp-1-train", node="node-a", pid=2))
    t, step = 100.0, 0

    def steps(until: float, every: float, pod: str) -> None:
        nonlocal t, step
        while t < until:
            step += 1
            events.append(TrainStep(ts=t, run_id=RUN, step=step, loss=1.0, pod=pod, job="exp-1-train"))
            t += every

    steps(105.0, fast_every, POD)
    events.append(FaultInjected(ts=t, fault="straggler", fault_id="straggler-1", target=POD, pod=POD,
                                job="exp-1-train", detail=f"slow pod {POD} on node node-b"))
    start = t
    if steps_in_window:
        steps(start + window, slow_every, steps_pod)
    else:
        t = start + window
    events.append(FaultHealed(ts=t, fault="straggler", fault_id="straggler-1", pod=POD, job="exp-1-train",
                              detail="removed"))
    steps(t + 5.0, fast_every, POD)
    return events


def test_seconds_per_step() -> None:
    assert seconds_per_step([1.0, 2.0, 4.0]) == 1.5
    assert seconds_per_step([1.0]) is None


def test_a_measured_slowdown_on_the_slowed_pod_passes_and_names_pod_and_node() -> None:
    result = check_straggler(_history(slow_every=0.5), run_id=RUN, min_factor=3)
    assert result.name == NAME and result.verdict == "pass", result.evidence
    line = result.evidence[0]
    assert f"attributed to pod {POD}" in line and "node(s) node-b" in line and "slowdown x5.0" in line, line


def test_a_slowdown_below_the_factor_fails_as_unseen() -> None:
    result = check_straggler(_history(slow_every=0.15), run_id=RUN, min_factor=3)
    assert result.verdict == "fail"
    assert "went unseen" in result.evidence[0] and "x1.5" in result.evidence[0]


def test_slow_steps_made_by_another_pod_fail_attribution() -> None:
    result = check_straggler(_history(slow_every=0.5, steps_pod="exp-1-train-b"), run_id=RUN, min_factor=3)
    assert result.verdict == "fail"
    assert "not attributed to the slowed pod" in result.evidence[0]


def test_no_straggler_fault_is_unknown() -> None:
    events = [e for e in _history(slow_every=0.5) if not isinstance(e, FaultInjected | FaultHealed)]
    result = check_straggler(events, run_id=RUN)
    assert result.verdict == "unknown" and "no straggler fault" in result.evidence[0]


def test_no_steps_inside_the_window_is_unknown() -> None:
    result = check_straggler(_history(slow_every=0.5, steps_in_window=False), run_id=RUN)
    assert result.verdict == "unknown" and "too few to measure" in result.evidence[0]


def test_another_runs_steps_are_not_measured() -> None:
    result = check_straggler(_history(slow_every=0.5), run_id="another-run")
    assert result.verdict == "unknown"
