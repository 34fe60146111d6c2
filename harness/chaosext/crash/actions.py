"""Chaos Toolkit actions of the crash-point sweep: wrappers over :mod:`harness.faults.crash_point`."""

from __future__ import annotations

import time
from dataclasses import replace

from harness import runtime
from harness.errors import HarnessError
from harness.faults.crash_plan import CrashKill, draw_plan, parse_points
from harness.faults.crash_point import CRASH_POINT_KILL
from harness.faults.role import derive_seed
from harness.history.events import CrashPointReached

__all__ = ["sweep_crash_points"]

POLL_SECONDS = 0.05  # the pipeline holds for seconds; the kill must land well inside that
HOLD_MARGIN = 0.5  # seconds a kill needs to reach the pod through the API and its node


def sweep_crash_points(
    points: list[str], kills: int = 6, max_occurrence: int = 3, forced_share: float = 0.5,
    grace_period_seconds: float = 30.0, pause_seconds: float = 3.0, timeout: float = 900.0,
) -> list[str]:
    """Start the experiment's main run with ``kills`` crash points armed and kill its pod at each.

    The kills are drawn from the chaos seed (:func:`~harness.faults.crash_plan.draw_plan`) among
    ``points``, crash-point names the pipeline marks in any of its steps: ``name:N`` draws the occurrence
    in 1..N, a plain name in 1..``max_occurrence``. Each kill is forced (SIGKILL) with probability
    ``forced_share``, else graceful with ``grace_period_seconds``. The pipeline holds ``pause_seconds`` at
    each armed point and the kill is issued as soon as the harness reads the point's event. Returns the
    kills made, as ``<point>#<n> on <pod>``; an armed point the run never reached is not killed (the check
    reports it). Blocks until every kill is made or the run has ended.
    """
    exp = runtime.current()
    if "main" in exp.pipeline_runs:
        raise HarnessError("sweep_crash_points starts the main run itself; remove start_pipeline_run before it")
    seed = derive_seed(exp.chaos_seed, exp.name, "crash-point-sweep")
    plan = draw_plan(seed, parse_points(points, max_occurrence=max_occurrence), kills=kills,
                     forced_share=forced_share, grace_period_seconds=grace_period_seconds)
    settings = replace(exp.settings, crash_points=",".join(k.armed for k in plan), crash_pause_seconds=pause_seconds)
    run = exp.start_pipeline_run(kind="daily", settings=settings)
    pending = {k.armed: k for k in plan}
    done: list[str] = []
    seen = 0
    deadline = time.monotonic() + timeout
    while pending and run.outcome is None:
        if time.monotonic() > deadline:
            raise HarnessError(f"crash-point sweep: run {run.run_id} still going after {timeout:g}s")
        runtime.current()  # raises once the experiment was interrupted
        events = exp.history.events()
        for event in events[seen:]:
            if not isinstance(event, CrashPointReached) or event.run_id != run.run_id:
                continue
            # A hold already over (we were busy killing): a retry of the step will hold there again.
            if event.armed in pending and time.time() < event.received + event.pause_seconds - HOLD_MARGIN:
                done.append(_kill(exp, replace(pending.pop(event.armed), pod=event.pod)))
        seen = len(events)
        time.sleep(POLL_SECONDS)
    return done


def _kill(exp: runtime.ActiveExperiment, kill: CrashKill) -> str:
    active = exp.faults.inject(CRASH_POINT_KILL, kill)
    exp.faults.heal_one(active.fault_id)
    return f"{kill.armed} on {kill.pod}"
