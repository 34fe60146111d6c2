"""Chaos Toolkit actions that race runs at the model registry: wrappers over :mod:`harness.faults.registry_race`."""

from __future__ import annotations

import datetime

from harness import runtime
from harness.faults.registry_race import REGISTRY_RACE, RegistryRaceParams
from harness.workload.backfill import dates_before

__all__ = ["start_registry_race", "stop_registry_race"]


def start_registry_race(racers: int = 3, train_steps: int = 10, end_date: str = "", name: str = "registry-race",
                        wait_seconds: float = 900.0) -> str:
    """Start ``racers`` runs (the ``racers`` dates before ``end_date``, default the experiment's date) that
    train ``train_steps`` steps each, then start their ``register`` step together; returns the fault id.

    Their run ids are ``backfill-<date>``; the experiment's main run registers beside them.
    """
    if not 1 <= racers <= 16:
        raise ValueError(f"racers must be between 1 and 16, got {racers}")
    exp = runtime.current()
    end = end_date or exp.settings.date
    try:
        datetime.date.fromisoformat(end)
    except ValueError:
        raise ValueError(f"end_date is YYYY-MM-DD, got {end!r}") from None
    params = RegistryRaceParams(name=name, dates=tuple(dates_before(end, racers)), train_steps=train_steps,
                                wait_seconds=wait_seconds)
    return exp.faults.inject(REGISTRY_RACE, params).fault_id


def stop_registry_race() -> list[str]:
    """Wait for every registry race of the experiment to finish (each up to its ``wait_seconds``), then stop
    what is left; returns the fault ids healed. Healing twice is harmless."""
    faults = runtime.current().faults
    return [fault_id for a in faults.active() if a.fault == REGISTRY_RACE.name for fault_id in faults.heal(a.fault_id)]
