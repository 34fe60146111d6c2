"""The one place that injects faults, records them in the history and heals them.

For each fault the recorder writes exactly one ``FaultInjected`` event, before the
fault acts, and exactly one ``FaultHealed`` event, however often it is healed. It
keeps the active faults and refuses a fault whose exclusion group an active one
holds. The fault's undo record is written before it acts and removed once healed.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import replace
from typing import TypeVar

from harness.cluster.base import EventSink
from harness.errors import HarnessError
from harness.faults.role import ActiveFault, Fault, FaultContext, FaultNotCleared, Target, derive_seed
from harness.history.events import FaultHealed, FaultInjected

__all__ = ["FaultRecorder"]

P = TypeVar("P")


class FaultRecorder:
    """Injects and heals the faults of one experiment. Safe across threads.

    ``context.seed`` is the run's chaos seed; each fault gets its own seed derived
    from it, ``experiment`` and the fault's id (recorded in its injected event).
    """

    def __init__(self, *, sink: EventSink, context: FaultContext, experiment: str) -> None:
        self._sink = sink
        self.context = context
        self._experiment = experiment
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._active: dict[str, ActiveFault] = {}  # in injection order; a fault being injected holds its groups

    def inject(self, fault: Fault[P], params: P) -> ActiveFault:
        """Plan ``fault``, refuse it if an active fault holds one of its groups, record it, then let it act.

        A fault whose action fails is recorded healed with the error (its undo record removed),
        unless it raised :class:`FaultNotCleared`: then its record stays for ``mlchaos heal``."""
        fault_id = f"{fault.name}-{next(self._ids)}"
        seed = derive_seed(self.context.seed, self._experiment, fault_id)
        ctx = replace(self.context, seed=seed, sink=self._sink)  # observers a fault runs write to the history
        target = fault.plan(ctx, params)
        with self._lock:
            self._refuse_conflicts(fault.name, fault_id, target)
            if target.refusal:
                raise HarnessError(target.refusal)
            undo_record = None
            if target.undo is not None and ctx.undo is not None:
                undo_record = target.undo(ctx.undo).id
            active = ActiveFault(fault_id=fault_id, fault=fault.name, target=target, seed=seed,
                                 undo_record=undo_record, heal=lambda: "")
            self._active[fault_id] = active  # holds its groups while it acts
        self._sink(FaultInjected(
            ts=time.time(), pod=target.pod, job=target.job, fault=fault.name, fault_id=fault_id, target=target.name,
            detail=f"{target.detail}; seed {seed} (chaos seed {self.context.seed})",
            grace_period_seconds=target.grace_period_seconds))
        try:
            heal = fault.inject(ctx, params, target)
        except FaultNotCleared:
            with self._lock:
                self._active.pop(fault_id, None)
            raise
        except BaseException as exc:
            with self._lock:
                self._active.pop(fault_id, None)
            self._healed(active, f"injection failed, nothing left to heal: {exc}")
            raise
        active = replace(active, heal=heal)
        with self._lock:
            self._active[fault_id] = active
        return active

    def _refuse_conflicts(self, name: str, fault_id: str, target: Target) -> None:
        for other in self._active.values():
            held = sorted(set(other.target.excludes) & set(target.excludes))
            if held:
                raise HarnessError(
                    f"{name} on {target.name} ({fault_id}) conflicts with active fault {other.fault_id} "
                    f"({other.fault} on {other.target.name}), which holds {', '.join(held)}; heal it first "
                    "(harness.chaosext.faults.actions.heal_faults)")

    def heal(self, fault_id: str | None = None) -> list[str]:
        """Heal one active fault, or all of them, newest first; returns the ids healed. Healing twice is
        harmless. A heal that fails leaves its fault active (a later heal retries it); HarnessError
        names every failure once all others are healed."""
        return [active.fault_id for active, _ in self._heal(fault_id)]

    def heal_one(self, fault_id: str) -> str:
        """Heal ``fault_id`` now; returns what healing did ("" when it was not active)."""
        done = self._heal(fault_id)
        return done[0][1] if done else ""

    def active(self) -> list[ActiveFault]:
        """The faults not healed yet, in injection order."""
        with self._lock:
            return list(self._active.values())

    def _heal(self, fault_id: str | None) -> list[tuple[ActiveFault, str]]:
        with self._lock:
            ids = [fault_id] if fault_id is not None else list(reversed(self._active))
            healing = [self._active.pop(i) for i in ids if i in self._active]
        done: list[tuple[ActiveFault, str]] = []
        errors: list[str] = []
        for active in healing:
            try:
                detail = active.heal()
            except Exception as exc:  # one failed heal must not keep the others from running
                errors.append(f"{active.fault_id} ({type(exc).__name__}: {exc})")
                with self._lock:
                    self._active[active.fault_id] = active
                continue
            self._healed(active, detail)
            done.append((active, detail))
        if errors:
            raise HarnessError(f"could not heal {'; '.join(errors)}; heal again, or run `mlchaos heal`")
        return done

    def _healed(self, active: ActiveFault, detail: str) -> None:
        if active.undo_record is not None and self.context.undo is not None:
            self.context.undo.remove(active.undo_record)
        self._sink(FaultHealed(ts=time.time(), pod=active.target.pod, job=active.target.job, fault=active.fault,
                               fault_id=active.fault_id, detail=detail))
