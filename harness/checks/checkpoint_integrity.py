"""``checkpoint-integrity``: a restore never loads a corrupted checkpoint.

For every ``checkpoint-corruption`` fault on the run (its target is the manifest key of the
checkpoint whose state object it damaged), the attempts that restored after it are judged:

- fail when one restored the corrupted checkpoint (its manifest key, or any key in its directory,
  as a restore of the bare state object reports), when one restored state whose component digests
  differ from those that checkpoint was saved with (``checkpoint_saved.components``), when the
  restore fell back past the previous complete checkpoint, or when no attempt after the fault
  restored or rejected anything and the training job failed (a restore that crashes on the damage);
- pass when an attempt rejected the corrupted checkpoint (``checkpoint_rejected``) and restored the
  previous complete one (or nothing, when there was none) with every component as saved;
- unknown when there was no such fault, the damage was not exercised (a newer checkpoint completed
  first, no attempt restored after it), or the pipeline reported no rejection.

And, as the issue asks, the run must end bit-identical to the uninterrupted run: final parameters
that differ fail; no ``training_completed`` or no reference leaves that part ``unknown``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness.checks.resume import first_difference
from harness.checks.verdict import CheckResult, Verdict, worst
from harness.evidence.reference import ReferenceRun
from harness.history.events import (
    CheckpointRejected,
    CheckpointRestored,
    CheckpointSaved,
    Event,
    FaultHealed,
    FaultInjected,
    JobFinished,
    TrainingCompleted,
    of_type,
)

NAME = "checkpoint-integrity"
FAULT = "checkpoint-corruption"  # harness.faults.checkpoint_corruption.NAME (checks do not import faults)
MISSED = "missed:"  # how that fault's heal says a newer checkpoint completed before any restore


def check_checkpoint_integrity(events: Sequence[Event], *, run_id: str, reference: ReferenceRun | None,
                               weight: float = 1.0) -> CheckResult:
    """Judge ``run_id``'s restores after each checkpoint corruption, and its end, by the contract above."""
    history = list(events)
    faults = [(i, e) for i, e in enumerate(history)
              if isinstance(e, FaultInjected) and e.fault == FAULT and f"/{run_id}/" in e.target]
    if not faults:
        return CheckResult(name=NAME, verdict="unknown", weight=weight, evidence=(
            f"no {FAULT} fault hit a checkpoint of run {run_id}, so restore verification was not exercised",))
    verdicts: list[Verdict] = []
    evidence: list[str] = []
    for index, fault in faults:
        verdict, line = _judge(history, index, fault, run_id)
        verdicts.append(verdict)
        evidence.append(line)
    verdict, line = _judge_final(history, run_id, reference)
    verdicts.append(verdict)
    evidence.append(line)
    return CheckResult(name=NAME, verdict=worst(verdicts), evidence=tuple(evidence), weight=weight)


def _directory(key: str) -> str:
    return key.rsplit("/", 1)[0]


def _judge(history: list[Event], index: int, fault: FaultInjected, run_id: str) -> tuple[Verdict, str]:
    key = fault.target
    before, after = history[:index], history[index + 1:]
    saved: dict[str, CheckpointSaved] = {e.manifest_key: e for e in of_type(history, CheckpointSaved)
                                         if e.run_id == run_id}
    step = saved[key].step if key in saved else None
    head = f"{fault.fault_id} damaged the step-{step if step is not None else '?'} checkpoint {key}"
    restores = [e for e in of_type(after, CheckpointRestored) if e.run_id == run_id]
    rejected = [e for e in of_type(after, CheckpointRejected) if e.run_id == run_id and e.manifest_key == key]

    loaded = [r for r in restores if _directory(r.manifest_key) == _directory(key)]
    if loaded:
        r = loaded[0]
        return "fail", (f"{head}; {r.pod} restored it anyway (step {r.step} from {r.manifest_key}) instead of "
                        "rejecting it: the restore did not verify the state against its manifest")
    for r in restores:
        expected = saved.get(r.manifest_key)
        name = first_difference(expected.components, r.components) if expected is not None else ""
        if name:
            assert expected is not None
            return "fail", (f"{head}; {r.pod} restored step {r.step} ({r.manifest_key}) with {name} differing from "
                            f"what was saved (saved {expected.components[name][:12]}, restored "
                            f"{r.components[name][:12]}): it loaded corrupted state")
    healed = [e for e in of_type(after, FaultHealed) if e.fault_id == fault.fault_id]
    if healed and MISSED in healed[0].detail:
        return "unknown", f"{head}, but {healed[0].detail.split(MISSED, 1)[1].strip()}: the damage was not exercised"
    if not restores and not rejected:
        failed = [e for e in of_type(after, JobFinished) if not e.succeeded and (not fault.job or e.job == fault.job)]
        if failed:
            return "fail", (f"{head}; no later attempt restored or rejected a checkpoint and job {failed[0].job} "
                            f"failed ({failed[0].failures} failures): restoring crashed on the damaged state")
        return "unknown", f"{head}; no attempt restored a checkpoint after it, so verification was not exercised"
    if not rejected:
        return "unknown", (f"{head}; the next restore used {restores[0].manifest_key} but the pipeline reported no "
                           "checkpoint_rejected for the damaged one, so its verification cannot be confirmed")
    earlier = [e for e in of_type(before, CheckpointSaved)
               if e.run_id == run_id and step is not None and e.step < step]
    want = max(earlier, key=lambda e: e.step, default=None)
    first = rejected[0]
    got = next((r for r in _later(after, first) if isinstance(r, CheckpointRestored) and r.run_id == run_id), None)
    how = f"{first.pod} rejected it ({first.reason})"
    if want is None:
        if got is None:
            return "pass", f"{head}; {how} and, with no earlier complete checkpoint, started from step 0"
        return "fail", f"{head}; {how} but restored {got.manifest_key}, which was never saved complete before"
    if got is None:
        return "fail", f"{head}; {how} but restored nothing, though step {want.step} ({want.manifest_key}) was complete"
    if got.step != want.step:
        return "fail", (f"{head}; {how} and restored step {got.step} ({got.manifest_key}), not the previous "
                        f"complete checkpoint, step {want.step} ({want.manifest_key})")
    compared = _compared(want.components, got.components)
    return "pass", (f"{head}; {how} and restored the previous complete checkpoint, step {got.step} "
                    f"({got.manifest_key}), {compared}")


def _later(events: list[Event], event: Event) -> list[Event]:
    """The events after ``event`` (by identity: equal events may repeat)."""
    position = next(i for i, e in enumerate(events) if e is event)
    return events[position + 1:]


def _compared(saved: Mapping[str, str], restored: Mapping[str, str]) -> str:
    common = set(saved) & set(restored)
    return f"all {len(common)} state components as saved" if common else "component digests not reported"


def _judge_final(history: list[Event], run_id: str, reference: ReferenceRun | None) -> tuple[Verdict, str]:
    done = [e for e in of_type(history, TrainingCompleted) if e.run_id == run_id]
    if not done:
        return "unknown", (f"run {run_id} never reported training_completed, so whether it ended bit-identical "
                           "is unknown")
    final = done[-1].params_sha256
    if reference is None:
        return "unknown", f"no uninterrupted reference run to compare final parameters {final[:12]} with"
    if final != reference.params_sha256:
        return "fail", (f"final parameters {final[:12]} differ from the uninterrupted run's "
                        f"{reference.params_sha256[:12]}")
    return "pass", f"final parameters bit-identical to the uninterrupted run (sha256 {final[:12]})"
