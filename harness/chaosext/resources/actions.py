"""Chaos Toolkit actions on a running pod's resources: wrappers over :mod:`harness.faults.oom_kill` and
:mod:`harness.faults.straggler`."""

from __future__ import annotations

from harness import runtime
from harness.chaosext.pod.actions import parse_selector
from harness.faults.oom_kill import OOM_KILL, OomKillParams
from harness.faults.straggler import STRAGGLER, StragglerParams

__all__ = ["oom_kill_pod", "slow_pod"]


def oom_kill_pod(label_selector: str = "", memory_limit: str = "64Mi", repeat: int = 1,
                 timeout_seconds: float = 60.0) -> str:
    """Cap the memory of the main run's running pod matching ``label_selector`` ("": the training step's) at
    ``memory_limit`` and grow it past the limit until the kernel OOM-kills it; with ``repeat`` > 1 the next
    attempts are hit too as they start (an OOM loop). Blocks until each hit attempt has ended (at most
    ``timeout_seconds`` each) and returns how each ended. Healed at once (the limit is taken back); the
    embedded cluster only (other clusters refuse it)."""
    params = OomKillParams(labels=parse_selector(label_selector), memory_limit=memory_limit, repeat=repeat,
                           timeout_seconds=timeout_seconds)
    faults = runtime.current().faults
    return faults.heal_one(faults.inject(OOM_KILL, params).fault_id)


def slow_pod(label_selector: str = "", cpu_limit: str = "100m", duration_seconds: float = 15.0) -> str:
    """Make the main run's running pod matching ``label_selector`` ("": the training step's) a straggler: limit
    it to ``cpu_limit`` cores for ``duration_seconds``, then give its CPU back. Blocks for the window and
    returns what healing did. The embedded cluster only (other clusters refuse it)."""
    params = StragglerParams(labels=parse_selector(label_selector), cpu_limit=cpu_limit,
                             duration_seconds=duration_seconds)
    faults = runtime.current().faults
    return faults.heal_one(faults.inject(STRAGGLER, params).fault_id)
