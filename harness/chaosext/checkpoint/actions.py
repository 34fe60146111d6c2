"""Chaos Toolkit actions on checkpoints: wrappers over :mod:`harness.faults.checkpoint_corruption`."""

from __future__ import annotations

from harness import runtime
from harness.errors import HarnessError
from harness.faults.checkpoint_corruption import CHECKPOINT_CORRUPTION, CheckpointCorruptionParams
from harness.history.events import Event, TrainingStarted

__all__ = ["corrupt_latest_checkpoint"]


def corrupt_latest_checkpoint(mode: str = "flip", kill: bool = True, grace_period_seconds: float = 0.0,
                              flips: int = 8, manifest_key: str = "", heal_after_restore: bool = True,
                              restore_timeout: float = 180.0) -> str:
    """Damage the state object of the main run's newest complete checkpoint (``mode``: ``truncate`` or
    ``flip``), then delete the training pod (``grace_period_seconds``; 0: SIGKILL) unless ``kill`` is false.

    With ``heal_after_restore`` the original object is put back once a later training attempt has
    started training (it has restored, or refused, what it found), or after ``restore_timeout``
    seconds leaves the fault active (the harness heals it when the experiment ends): a replacement
    that keeps crashing on the damage must keep seeing it. Returns the fault id and what happened.
    """
    params = CheckpointCorruptionParams(mode=mode, kill=kill, grace_period_seconds=grace_period_seconds,
                                        flips=flips, manifest_key=manifest_key)
    exp = runtime.current()
    # Taken before the kill: a replacement may start training before inject returns, and must still count.
    before = {id(e) for e in exp.history.events()}
    active = exp.faults.inject(CHECKPOINT_CORRUPTION, params)
    if not heal_after_restore or not kill:
        return f"{active.fault_id}: active until healed"
    run_id = exp.main_run().run_id

    def resumed(event: Event) -> bool:
        return isinstance(event, TrainingStarted) and event.run_id == run_id and id(event) not in before

    try:
        exp.history.wait_for(resumed, timeout=restore_timeout, what=f"a new attempt of run {run_id} to start training")
    except HarnessError as error:
        return f"{active.fault_id}: left active ({error})"
    return f"{active.fault_id}: {exp.faults.heal_one(active.fault_id)}"
