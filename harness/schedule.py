"""When faults fire: at a training step. Never acts on the cluster."""

from __future__ import annotations

from harness.history.events import Event, TrainStep
from harness.history.store import History


def wait_for_training_step(history: History, *, run_id: str, step: int, timeout: float) -> TrainStep:
    """Block until ``run_id`` has completed training step ``step`` (or a later one)."""

    def reached(event: Event) -> bool:
        return isinstance(event, TrainStep) and event.run_id == run_id and event.step >= step

    found = history.wait_for(reached, timeout=timeout, what=f"run {run_id} to reach training step {step}")
    assert isinstance(found, TrainStep)
    return found
