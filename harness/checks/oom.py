"""``oom-recovered``: every training attempt the kernel OOM-killed was retried, resumed from its checkpoint, and the
run's training completed.

Read from the history alone: a ``PodExited`` with reason ``OOMKilled`` (what the kubelet, or the embedded
cluster's node agent, reports for a container its memory cgroup's OOM killer ended) of an attempt of a job that
trained ``run_id`` (also one killed before it started training, e.g. while restoring). For each such attempt:

- *retried*: a later attempt of the run started training;
- *resumed*: that attempt restored the latest checkpoint saved before the kill (starting from step 0 is right
  only when none had been saved);
- the step it was killed at: the last step it reported (its "step reached"; none when it was killed before it
  started training).

The kills form an **OOM loop** when there are two or more and the run made no durable progress between them:
every one came with the same latest checkpoint, or at the same step reached (the pipeline's memory need
exceeds its limit at that step, so each retry restores the same checkpoint and dies again). Otherwise they are
**transient**. The evidence says which.

Verdicts: ``pass`` when every OOM-killed training attempt was retried and resumed from its checkpoint and the
run's training completed after the last kill (a loop the run got out of passes, labelled as a loop); ``fail``
when training never completed after an OOM kill (an OOM loop is named as the cause when it is one), when an
attempt was not retried, or when a retry did not resume from the checkpoint; ``unknown`` when no training
attempt was OOM-killed (the fault did not act, e.g. the node's cgroups are not writable).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.checks.verdict import CheckResult, Verdict, worst
from harness.history.clock import HarnessClock
from harness.history.events import (
    CheckpointRestored,
    CheckpointSaved,
    Event,
    PodExited,
    TrainingCompleted,
    TrainingStarted,
    TrainStep,
    of_type,
)

__all__ = ["NAME", "OOM_REASON", "OomKill", "check_oom", "oom_kills"]

NAME = "oom-recovered"
OOM_REASON = "OOMKilled"


@dataclass(frozen=True, kw_only=True)
class OomKill:
    """One OOM-killed training attempt and what came after it.

    ``step_reached``: the last step it reported (its start step when it reported none; None when it was killed
    before it started training); ``checkpoint``: the latest checkpoint saved before the kill (None: none yet);
    ``ts``: the kill, on the harness's clock; ``next_pod``/``next_attempt``: the attempt that trained next
    ("" / -1: none did); ``restored``: the step that attempt restored (None: it started afresh)."""

    pod: str
    attempt: int
    node: str
    ts: float
    step_reached: int | None
    checkpoint: int | None
    next_pod: str
    next_attempt: int
    restored: int | None

    @property
    def retried(self) -> bool:
        return bool(self.next_pod)

    @property
    def resumed(self) -> bool:
        """The retry restored the latest checkpoint (or none existed and it started from 0)."""
        return self.retried and self.restored == self.checkpoint


def oom_kills(events: Sequence[Event], *, run_id: str) -> list[OomKill]:
    """The OOM-killed attempts of the jobs that trained ``run_id``, in order of their end."""
    history = list(events)
    clock = HarnessClock(history)  # pipeline events carry the pod's clock, pod exits the harness's
    starts = [t for t in of_type(history, TrainingStarted) if t.run_id == run_id]
    jobs = {t.job for t in starts}
    kills: list[OomKill] = []
    for exited in of_type(history, PodExited):
        key = (exited.pod, exited.attempt)
        if exited.reason != OOM_REASON or exited.job not in jobs:
            continue
        steps = [s.step for s in of_type(history, TrainStep)
                 if s.run_id == run_id and (s.pod, s.attempt) == key]
        start_step = next((t.start_step for t in starts if (t.pod, t.attempt) == key), None)
        saved = [c.step for c in of_type(history, CheckpointSaved)
                 if c.run_id == run_id and clock.time(c) <= clock.time(exited)]
        later = [t for t in starts if clock.time(t) > clock.time(exited) and (t.pod, t.attempt) != key]
        nxt = later[0] if later else None
        restored = None
        if nxt is not None:
            restored = next((r.step for r in of_type(history, CheckpointRestored)
                             if r.run_id == run_id and (r.pod, r.attempt) == (nxt.pod, nxt.attempt)), None)
        kills.append(OomKill(pod=exited.pod, attempt=exited.attempt, node=exited.node, ts=clock.time(exited),
                             step_reached=max(steps) if steps else start_step, checkpoint=max(saved, default=None),
                             next_pod=nxt.pod if nxt else "", next_attempt=nxt.attempt if nxt else -1,
                             restored=restored))
    return kills


def check_oom(events: Sequence[Event], *, run_id: str, weight: float = 1.0) -> CheckResult:
    """Judge the run's OOM kills as the module says."""
    history = list(events)
    kills = oom_kills(history, run_id=run_id)
    if not kills:
        others = sum(1 for e in of_type(history, PodExited) if e.reason == OOM_REASON)
        why = (f"{others} OOMKilled attempt(s) in the history, none of them training run {run_id}" if others
               else "no OOMKilled attempt in the history: the fault did not act (are the node's cgroups writable?)")
        return CheckResult(name=NAME, verdict="unknown", weight=weight, evidence=(why,))
    at_steps = ", ".join(_step(k) for k in kills)
    same_step = len({k.step_reached for k in kills}) == 1
    same_checkpoint = len({k.checkpoint for k in kills}) == 1
    loop = len(kills) >= 2 and (same_step or same_checkpoint)
    if not loop:
        kind = f"transient: {len(kills)} OOM kill(s) at step(s) {at_steps}"
    elif same_step:
        kind = f"OOM loop: {len(kills)} attempts killed at the same step {kills[0].step_reached}"
    else:
        kind = (f"OOM loop: {len(kills)} attempts killed (at steps {at_steps}) with no new checkpoint between "
                f"them (latest {kills[0].checkpoint if kills[0].checkpoint is not None else 'none'})")
    evidence = [kind]
    verdicts: list[Verdict] = []
    for k in kills:
        head = (f"{k.pod} attempt {k.attempt} on {k.node or '?'} OOM-killed {_at(k)} "
                f"(latest checkpoint {k.checkpoint if k.checkpoint is not None else 'none'})")
        if not k.retried:
            verdicts.append("fail")
            evidence.append(f"{head}: never retried")
        elif not k.resumed:
            verdicts.append("fail")
            got = f"step {k.restored}" if k.restored is not None else "nothing (started from step 0)"
            evidence.append(f"{head}: the retry {k.next_pod} attempt {k.next_attempt} restored {got}, "
                            f"not the latest checkpoint")
        else:
            verdicts.append("pass")
            evidence.append(f"{head}: retried as {k.next_pod} attempt {k.next_attempt}, resumed from "
                            + (f"step {k.restored}" if k.restored is not None else "step 0 (no checkpoint yet)"))
    last = kills[-1].ts
    clock = HarnessClock(history)
    done = [c for c in of_type(history, TrainingCompleted) if c.run_id == run_id and clock.time(c) > last]
    if done:
        evidence.append(f"training completed at step {done[0].step} after the last OOM kill")
    else:
        verdicts.append("fail")
        evidence.append("training never completed after the last OOM kill"
                        + (" (the OOM loop kept the run from progressing)" if loop else ""))
    return CheckResult(name=NAME, verdict=worst(verdicts), evidence=tuple(evidence), weight=weight)


def _step(kill: OomKill) -> str:
    return str(kill.step_reached) if kill.step_reached is not None else "(before training)"


def _at(kill: OomKill) -> str:
    return f"at step {kill.step_reached}" if kill.step_reached is not None else "before it started training"
