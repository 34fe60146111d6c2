"""The Fault role (Jepsen's nemesis): one protocol for every fault.

A fault first *plans*: it finds what it will hit without acting and returns a
:class:`Target` (what it will do, the exclusion groups it holds, such as
``proxy:s3`` or ``node:<name>``, and how to write its undo record). The
recorder (:mod:`harness.faults.recorder`) refuses a fault whose group an active
fault holds, writes the undo record and the ``FaultInjected`` event, and only
then lets the fault *inject*, which acts and returns its heal. Faults never
write events themselves. The split is what lets the recorder refuse and record
a fault before it acts.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from harness.cluster.base import Cluster, EventSink
from harness.errors import HarnessError
from harness.services.proxy import ProxyControl
from harness.undo import UndoLog, UndoRecord
from harness.workload.backfill import Backfill

__all__ = [
    "ActiveFault",
    "BackfillLauncher",
    "Fault",
    "FaultContext",
    "FaultNotCleared",
    "Heal",
    "Target",
    "derive_seed",
]

P_contra = TypeVar("P_contra", contravariant=True)

Heal = Callable[[], str]
"""Undoes an active fault and says what it did (the ``FaultHealed`` detail)."""


class FaultNotCleared(HarnessError):
    """Raised by ``inject`` when acting failed and undoing what it did failed too: the recorder then
    keeps the fault's undo record (``mlchaos heal`` undoes it) and does not record it healed."""


class BackfillLauncher(Protocol):
    """Builds, without starting it, a backfill of the experiment's pipeline over ``dates``."""

    def __call__(self, *, name: str, dates: Sequence[str], concurrency: int, train_steps: int) -> Backfill: ...


@dataclass(frozen=True, kw_only=True)
class Target:
    """What a planned fault will hit and do.

    ``excludes``: the exclusion groups it holds while active (no two active faults
    share one). ``pod``/``job``: the training attempt it hits, so the history links
    the two. ``undo``: writes the record that lets ``mlchaos heal`` undo the fault
    after a killed run; written before the fault acts, removed once it is healed.
    ``refusal``: why the fault must not act, found while planning (a proxy with faults
    set by something else); the recorder raises it after naming any conflict with an
    active fault, which is the likelier cause.
    """

    name: str
    detail: str
    excludes: tuple[str, ...] = ()
    pod: str = ""
    job: str = ""
    grace_period_seconds: float = -1.0
    undo: Callable[[UndoLog], UndoRecord] | None = None
    refusal: str = ""


@dataclass(frozen=True, kw_only=True)
class ActiveFault:
    """A fault that has acted. ``heal`` is called at most once, by the recorder."""

    fault_id: str
    fault: str
    target: Target
    seed: int
    undo_record: str | None
    heal: Heal


@dataclass(frozen=True, kw_only=True)
class FaultContext:
    """What faults act on, for one experiment.

    ``seed`` is the run's chaos seed in the experiment's context, and the fault's own
    seed (:func:`derive_seed`) in the context a fault is given. ``run_labels`` are
    labels every pod a fault hits must carry (the judged run's), ``train_step`` the
    workload's training step, which an empty selector picks. ``s3_url``/``bucket``: where the
    pipeline's objects are ("" when the environment gives no direct S3 endpoint).
    """

    cluster: Cluster
    seed: int
    run_labels: Mapping[str, str] = field(default_factory=dict)
    train_step: str = ""
    proxies: Mapping[str, ProxyControl] = field(default_factory=dict)
    undo: UndoLog | None = None
    launch_backfill: BackfillLauncher | None = None
    sink: EventSink | None = None  # the history, for observers a fault runs (the GPU sampler); set by the recorder
    s3_url: str = ""  # the object store without any fault proxy, for faults that act on stored objects
    bucket: str = ""  # the judged run's bucket there

    def pod_labels(self, selector: Mapping[str, str]) -> dict[str, str]:
        """Labels of the pods ``selector`` picks; an empty selector picks the training step's pods."""
        return {**(selector or {"step": self.train_step}), **self.run_labels}

    def proxy(self, target: str) -> ProxyControl:
        """The fault proxy in front of ``target``; a HarnessError names the ones there are."""
        if target not in self.proxies:
            known = ", ".join(sorted(self.proxies)) or "none"
            raise HarnessError(f"no fault proxy in front of {target!r} in this environment (proxied: {known})")
        return self.proxies[target]

    def rng(self) -> random.Random:
        """A random stream of this fault alone: a replay with the same chaos seed draws the same."""
        return random.Random(self.seed)


class Fault(Protocol[P_contra]):
    """A kind of fault. ``plan`` chooses the target without acting; ``inject`` acts and returns the
    heal, which must be idempotent. If acting fails, ``inject`` undoes what it did before raising
    (or raises :class:`FaultNotCleared`)."""

    @property
    def name(self) -> str: ...

    def plan(self, ctx: FaultContext, params: P_contra) -> Target: ...

    def inject(self, ctx: FaultContext, params: P_contra, target: Target) -> Heal: ...


def derive_seed(chaos_seed: int, experiment: str, fault_id: str) -> int:
    """The seed of one fault's random draws: the same for the same (chaos seed, experiment, fault id),
    so a run replayed with its chaos seed draws the same faults (hashlib: ``hash`` is salted per process)."""
    digest = hashlib.sha256(f"{chaos_seed}\0{experiment}\0{fault_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1
