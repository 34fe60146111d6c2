"""``resume-from-checkpoint``: training survives interruptions without losing work.

Pass only when, for every fault that ended a training attempt:
- a later attempt started and restored the latest complete checkpoint written
  before the interrupted attempt ended;
- no step was lost after a graceful stop (SIGTERM honoured within the grace
  period), at most one checkpoint interval after SIGKILL;
and the final parameters hash equals that of an uninterrupted run with the same
seed. Any violation fails; missing data (no interruption, no final hash, no
reference) leaves the verdict ``unknown``.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.checks.interruptions import FaultOutcome, fault_outcomes
from harness.checks.verdict import CheckResult, Verdict, worst
from harness.history.events import Event, TrainingCompleted, of_type

NAME = "resume-from-checkpoint"


def check_resume(
    events: Sequence[Event], *, run_id: str, reference_sha256: str | None, weight: float = 1.0
) -> CheckResult:
    """Judge ``run_id``'s training against the contract above."""
    outcomes = [o for o in fault_outcomes(events) if o.hit_training]
    verdicts: list[Verdict] = []
    evidence: list[str] = []
    if not outcomes:
        verdicts.append("unknown")
        evidence.append("no fault interrupted training in this history, so resumption was not exercised")
    for outcome in outcomes:
        verdict, line = _judge(outcome)
        verdicts.append(verdict)
        evidence.append(line)
    verdict, line = _judge_final(events, run_id=run_id, reference_sha256=reference_sha256)
    verdicts.append(verdict)
    evidence.append(line)
    return CheckResult(name=NAME, verdict=worst(verdicts), evidence=tuple(evidence), weight=weight)


def _judge(o: FaultOutcome) -> tuple[Verdict, str]:
    head = f"{o.fault} {o.target} (exit {o.exit_code}, {'graceful' if o.graceful else 'SIGKILL'})"
    if not o.resumed_pod:
        return "fail", f"{head}: no later attempt of the job started; training never resumed"
    expected = o.latest_checkpoint
    if o.restored_step != expected:
        got = "nothing (started from step 0)" if o.restored_step is None else f"step {o.restored_step}"
        want = "no checkpoint" if expected is None else f"step {expected}"
        return "fail", f"{head}: {o.resumed_pod} restored {got}, but the latest complete checkpoint was {want}"
    allowed = 0 if o.graceful else (o.checkpoint_every or 0)
    lost = o.steps_lost or 0
    if lost > allowed:
        return "fail", (
            f"{head}: {lost} steps lost (last step {o.last_step_before}, restored {o.restored_step}); "
            f"at most {allowed} allowed"
        )
    recovery = "never made progress" if o.recovery_seconds is None else f"first new step after {o.recovery_seconds:.2f}s"
    verdict: Verdict = "pass" if o.recovery_seconds is not None else "fail"
    return verdict, (
        f"{head}: {o.resumed_pod} restored step {o.restored_step} (latest complete), "
        f"{lost} steps lost (allowed {allowed}), {recovery} ({o.clock})"
    )


def _judge_final(events: Sequence[Event], *, run_id: str, reference_sha256: str | None) -> tuple[Verdict, str]:
    done = [e for e in of_type(list(events), TrainingCompleted) if e.run_id == run_id]
    if not done:
        return "unknown", f"run {run_id} never reported training_completed, so its final parameters are unknown"
    final = done[-1].params_sha256
    if reference_sha256 is None:
        return "unknown", f"no uninterrupted reference run to compare final parameters {final[:12]} with"
    if final != reference_sha256:
        return "fail", f"final parameters {final[:12]} differ from the uninterrupted run's {reference_sha256[:12]}"
    return "pass", f"final parameters bit-identical to the uninterrupted run (sha256 {final[:12]})"
