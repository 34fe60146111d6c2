"""``resume-from-checkpoint``: training survives interruptions without losing work.

Pass only when, for every fault that ended a training attempt:
- a later attempt started and restored the latest complete checkpoint written
  before the interrupted attempt ended, and every state component it restored
  (parameters, optimizer, scheduler, RNG streams, data position) has the digest
  the checkpoint was saved with;
- no step was lost after a graceful stop (a checkpoint saved after SIGTERM, then
  the attempt's own exit), at most one checkpoint interval after SIGKILL; an
  attempt that was given a grace period and stopped without saving after its
  SIGTERM lost work it had time to keep;
and the final parameters hash equals that of an uninterrupted run with the same
seed. When it does not, the first step whose digest trail departs from the
uninterrupted run's says where training diverged. Any violation fails; missing
data (no interruption, no final hash, no reference) leaves the verdict ``unknown``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness.checks.interruptions import FaultOutcome, fault_outcomes
from harness.checks.verdict import CheckResult, Verdict, worst
from harness.evidence.inventory import Inventory
from harness.evidence.reference import ReferenceRun
from harness.history.events import CheckpointRestored, CheckpointSaved, DigestTrail, Event, TrainingCompleted, of_type

NAME = "resume-from-checkpoint"

# The order components are compared in, so "the first that differs" means the same thing in every report.
COMPONENT_ORDER = ("parameters", "optimizer", "scheduler", "rng_torch", "rng_cuda", "rng_numpy", "rng_python",
                   "data_position")


def check_resume(
    events: Sequence[Event], *, run_id: str, reference: ReferenceRun | None, inventory: Inventory | None = None,
    weight: float = 1.0, require_interruption: bool = True, allow_inflight_checkpoint: bool = False,
) -> CheckResult:
    """Judge ``run_id``'s training against the contract above. Without a fault that interrupted training
    the verdict is ``unknown`` when ``require_interruption`` (an experiment meant to interrupt training did
    not); otherwise (a game day's runs, where many faults miss training by design) the run is judged on
    its end alone: bit-identical to the uninterrupted run.

    After a SIGKILL at most one checkpoint interval may be lost. With ``allow_inflight_checkpoint`` (an
    experiment that kills in the middle of a checkpoint upload on purpose), when the checkpoint last due
    before the kill never completed, the steps trained while it was being written are allowed too (at
    most interval + the steps since it was due); the restore must still be of the latest complete one."""
    history = list(events)
    outcomes = [o for o in fault_outcomes(history) if o.hit_training]
    verdicts: list[Verdict] = []
    evidence: list[str] = []
    if not outcomes:
        verdicts.append("unknown" if require_interruption else "pass")
        evidence.append("no fault interrupted training in this history, so resumption was not exercised")
    stored = {v.key for v in inventory.versions} if inventory is not None else None
    for outcome in outcomes:
        verdict, line = _judge(outcome, stored, allow_inflight_checkpoint=allow_inflight_checkpoint)
        component_verdict, component_line = _judge_components(outcome, history)
        verdicts += [verdict, component_verdict]
        evidence.append(line + (f"; {component_line}" if component_line else ""))
    verdict, lines = _judge_final(history, run_id=run_id, reference=reference)
    verdicts.append(verdict)
    evidence += lines
    return CheckResult(name=NAME, verdict=worst(verdicts), evidence=tuple(evidence), weight=weight)


def _judge(o: FaultOutcome, stored: set[str] | None, *, allow_inflight_checkpoint: bool = False
           ) -> tuple[Verdict, str]:
    how = "graceful: checkpoint saved after SIGTERM" if o.graceful else (
        "SIGKILL" if o.exit_code == 137 else "stopped without a checkpoint after SIGTERM")
    head = f"{o.fault} {o.target} (exit {o.exit_code}, {how})"
    if not o.resumed_pod:
        return "fail", f"{head}: no later attempt of the job started; training never resumed"
    expected = o.latest_checkpoint
    if o.restored_step != expected:
        got = "nothing (started from step 0)" if o.restored_step is None else f"step {o.restored_step}"
        want = "no checkpoint" if expected is None else f"step {expected}"
        line = f"{head}: {o.resumed_pod} restored {got}, but the latest complete checkpoint was {want}"
        if o.restored_step is None and _outside_the_store(o.latest_checkpoint_key, stored):
            line += (f"; that checkpoint ({o.latest_checkpoint_key}) never reached the object store: it was on the "
                     "pod's local disk and was lost with the pod")
        return "fail", line
    lost = o.steps_lost or 0
    if o.sigterm_step is not None and not o.graceful and o.grace_period_seconds != 0:
        return "fail", (f"{head}: it was told to stop at step {o.sigterm_step} with a grace period and saved no "
                        f"checkpoint before exiting; {lost} steps lost")
    allowed = 0 if o.graceful else (o.checkpoint_every or 0)
    inflight = ""
    every, last = o.checkpoint_every or 0, o.last_step_before or 0
    due = last // every * every if every else 0
    if allow_inflight_checkpoint and not o.graceful and due and (o.latest_checkpoint or 0) < due:
        allowed = every + last - due
        inflight = f"; the checkpoint of step {due} was still being written when the attempt was killed"
    if lost > allowed:
        return "fail", (
            f"{head}: {lost} steps lost (last step {o.last_step_before}, restored {o.restored_step}); "
            f"at most {allowed} allowed{inflight}"
        )
    recovery = ("never made progress" if o.recovery_seconds is None
                else f"first new step after {o.recovery_seconds:.2f}s")
    verdict: Verdict = "pass" if o.recovery_seconds is not None else "fail"
    return verdict, (
        f"{head}: {o.resumed_pod} restored step {o.restored_step} (latest complete), "
        f"{lost} steps lost (allowed {allowed}{inflight}), {recovery} ({o.clock})"
    )


def _outside_the_store(key: str, stored: set[str] | None) -> bool:
    """Whether checkpoint ``key`` was never in the object store: absent from its inventory, or a path on
    the pod's own disk (an absolute path or a ``file:`` URL, which no S3 key of the layout is)."""
    if not key:
        return False
    if key.startswith(("/", "file:")):
        return True
    return stored is not None and key not in stored


def _ordered(names: set[str]) -> list[str]:
    return [n for n in COMPONENT_ORDER if n in names] + sorted(names - set(COMPONENT_ORDER))


def first_difference(expected: Mapping[str, str], got: Mapping[str, str]) -> str:
    """The first component (in :data:`COMPONENT_ORDER`) whose digest differs, '' when none does;
    a component one side lacks is not compared."""
    for name in _ordered(set(expected) & set(got)):
        if expected[name] != got[name]:
            return name
    return ""


def _judge_components(o: FaultOutcome, events: list[Event]) -> tuple[Verdict, str]:
    """Did the resumed attempt get back exactly the state that was saved?"""
    if o.restored_step is None or not o.resumed_pod:
        return "pass", ""
    restored = [e for e in of_type(events, CheckpointRestored) if e.pod == o.resumed_pod and e.step == o.restored_step]
    saved = [e for e in of_type(events, CheckpointSaved) if e.step == o.restored_step and e.components
             and (not restored or e.run_id == restored[0].run_id)]
    if not restored or not restored[0].components or not saved:
        return "pass", "state component digests not reported, so the restored state was not compared with the saved"
    got, expected = restored[0].components, saved[-1].components
    name = first_difference(expected, got)
    if name:
        return "fail", (f"restored {name} of step {o.restored_step} differs from what was saved "
                        f"(saved {expected[name][:12]}, restored {got[name][:12]}): the checkpoint did not bring "
                        f"back the {name}")
    return "pass", f"all {len(set(expected) & set(got))} state components restored as saved"


def _trail(events: list[Event], run_id: str) -> dict[int, Mapping[str, str]]:
    """The run's digest trail: per step, what the latest attempt that reached it reported."""
    return {e.step: e.components for e in of_type(events, DigestTrail) if e.run_id == run_id}


def first_departure(trail: Mapping[int, Mapping[str, str]], reference: Mapping[int, Mapping[str, str]]
                    ) -> tuple[int, str] | None:
    """The first (step, component) where ``trail`` departs from ``reference``; None when it never does."""
    for step in sorted(set(trail) & set(reference)):
        name = first_difference(reference[step], trail[step])
        if name:
            return step, name
    return None


def _judge_final(events: list[Event], *, run_id: str, reference: ReferenceRun | None) -> tuple[Verdict, list[str]]:
    done = [e for e in of_type(events, TrainingCompleted) if e.run_id == run_id]
    if not done:
        return "unknown", [f"run {run_id} never reported training_completed, so its final parameters are unknown"]
    final = done[-1].params_sha256
    if reference is None:
        return "unknown", [f"no uninterrupted reference run to compare final parameters {final[:12]} with"]
    trail = _trail(events, run_id)
    departure = first_departure(trail, reference.trail)
    if not trail or not reference.trail:
        where = "no digest trail to say where training diverged"
    elif departure is None:
        compared = len(set(trail) & set(reference.trail))
        where = f"the digest trail matches the uninterrupted run's at all {compared} steps compared"
    else:
        step, name = departure
        where = f"the digest trail first departs from the uninterrupted run's at step {step} ({name})"
    if final != reference.params_sha256:
        return "fail", [f"final parameters {final[:12]} differ from the uninterrupted run's "
                        f"{reference.params_sha256[:12]}; {where}"]
    if departure is not None:
        # Identical parameters despite a departing component: it is one training never reads (an unseeded
        # RNG stream it does not use, say). Worth knowing; not a lost or changed step.
        where += ", which did not change the final parameters (a component training does not depend on)"
    return "pass", [f"final parameters bit-identical to the uninterrupted run (sha256 {final[:12]}); {where}"]
