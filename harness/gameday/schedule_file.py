"""``schedule.json``: a night's drawn schedule, written before anything is injected and read back to replay it.

The text is canonical (sorted keys, fixed indentation, no timestamps), so the same
seed and game-day file give the same bytes, and a replay reads exactly what ran.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.gameday.model import FAULT_KINDS, Schedule, ScheduledFault, ScheduledRun, Trigger

__all__ = ["FORMAT", "read_schedule", "schedule_text", "write_schedule"]

FORMAT = "mlchaos-gameday-schedule/1"


def schedule_text(schedule: Schedule) -> str:
    """The canonical JSON text of ``schedule``."""
    doc = {"format": FORMAT, **asdict(schedule)}
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


def write_schedule(schedule: Schedule, path: Path) -> None:
    """Write ``schedule`` to ``path`` (atomically: a reader never sees half a schedule)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(schedule_text(schedule), encoding="utf-8")
    tmp.replace(path)


def read_schedule(path: Path) -> Schedule:
    """The schedule written at ``path``; a HarnessError names the file and what is wrong with it."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HarnessError(f"{path}: no such schedule file; pass the schedule.json a game day wrote") from None
    except (OSError, ValueError) as exc:
        raise HarnessError(f"{path}: not a readable schedule.json ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise HarnessError(f"{path}: not a game-day schedule (expected format {FORMAT!r})")
    try:
        return Schedule(
            seed=int(doc["seed"]), source=str(doc["source"]), duration_seconds=float(doc["duration_seconds"]),
            train_steps=int(doc["train_steps"]), train_step_name=str(doc["train_step_name"]),
            runs=tuple(_run(r) for r in doc["runs"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise HarnessError(f"{path}: malformed schedule ({type(exc).__name__}: {exc}); "
                           "write it again with mlchaos gameday, do not edit it by hand") from None


def _run(raw: dict[str, Any]) -> ScheduledRun:
    return ScheduledRun(index=int(raw["index"]), date=str(raw["date"]), faults=tuple(_fault(f) for f in raw["faults"]))


def _fault(raw: dict[str, Any]) -> ScheduledFault:
    kind = str(raw["kind"])
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}")
    at = raw["at"]
    return ScheduledFault(
        fault_id=str(raw["fault_id"]), entry=str(raw["entry"]), kind=kind,
        at=Trigger(step=str(at["step"]), training_step=int(at["training_step"]), seconds=float(at["seconds"])),
        heal_after_step=int(raw["heal_after_step"]),
        params=tuple((str(k), v) for k, v in raw["params"]),
        groups=tuple(str(g) for g in raw["groups"]),
    )
