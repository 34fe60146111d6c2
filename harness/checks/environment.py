"""``environment-pinned``: a run never resumes silently under another environment than the one it started in.

Each step process reports its environment fingerprint once (``EnvironmentReported``). Steps differ
from each other (not every step imports torch), so attempts are compared within one Job (one step):

- pass when every attempt of every step with two or more attempts reports the same fingerprint;
- pass when fingerprints differ and no attempt resumed a checkpoint written under another fingerprint,
  and the pipeline refused (an ``EnvironmentRefused`` event from an attempt whose fingerprint differs);
- fail when an attempt restored a checkpoint (``CheckpointRestored``) written under another fingerprint
  (the saving attempt's, found through the manifest key; else the previous attempt's): it resumed
  silently across drift;
- ``unknown`` when no step has two attempts with fingerprints, or when fingerprints differ but no
  attempt either resumed or refused (nothing shows what the pipeline does about drift).
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.checks.verdict import CheckResult, Verdict
from harness.history.events import (
    CheckpointRestored,
    CheckpointSaved,
    EnvironmentRefused,
    EnvironmentReported,
    Event,
    of_type,
)

NAME = "environment-pinned"

Attempt = tuple[str, int]  # (job, attempt number)


def check_environment(events: Sequence[Event], *, run_id: str, weight: float = 1.0) -> CheckResult:
    """Judge ``run_id``'s attempts as the module says."""
    history = list(events)
    prints: dict[Attempt, str] = {(e.job, e.attempt): e.fingerprint for e in of_type(history, EnvironmentReported)
                                  if e.run_id == run_id}
    by_job: dict[str, dict[int, str]] = {}
    for (job, attempt), fingerprint in prints.items():
        by_job.setdefault(job, {})[attempt] = fingerprint
    judged = {job: attempts for job, attempts in by_job.items() if len(attempts) >= 2}
    if not judged:
        return _result("unknown", weight, f"no step of run {run_id} has two attempts that reported an environment "
                                          "fingerprint: nothing to compare")
    drifted = {job: attempts for job, attempts in judged.items() if len(set(attempts.values())) > 1}
    if not drifted:
        return _result("pass", weight, *(f"{job}: {len(a)} attempts, one fingerprint {next(iter(a.values()))[:12]}"
                                         for job, a in sorted(judged.items())))
    silent = _silent_resumes(history, run_id, prints)
    if silent:
        return _result("fail", weight, *silent)
    refusals = [r for r in of_type(history, EnvironmentRefused) if r.run_id == run_id
                and prints.get((r.job, r.attempt)) not in (None, r.checkpoint_fingerprint)]
    changes = [f"{job}: fingerprints by attempt {_short(a)}" for job, a in sorted(drifted.items())]
    if refusals:
        refused = [f"attempt {r.attempt} of {r.job} refused to resume step {r.step} (differing: {r.differing})"
                   for r in refusals]
        return _result("pass", weight, *changes, *refused, "no attempt resumed across the change")
    return _result("unknown", weight, *changes, "the environment changed but no attempt resumed a checkpoint or "
                                                "refused to: nothing shows how the pipeline handles drift")


def _silent_resumes(history: list[Event], run_id: str, prints: dict[Attempt, str]) -> list[str]:
    """One line per restore of a checkpoint written under another fingerprint than the restorer's."""
    saver = {s.manifest_key: (s.job, s.attempt) for s in of_type(history, CheckpointSaved) if s.run_id == run_id}
    found = []
    for restore in of_type(history, CheckpointRestored):
        if restore.run_id != run_id:
            continue
        mine = prints.get((restore.job, restore.attempt))
        source = saver.get(restore.manifest_key)
        if source is None:  # saved outside this history: compare with the job's previous attempt
            earlier = [a for (job, a) in prints if job == restore.job and a < restore.attempt]
            source = (restore.job, max(earlier)) if earlier else None
        theirs = prints.get(source) if source is not None else None
        if mine is not None and theirs is not None and mine != theirs:
            found.append(f"attempt {restore.attempt} of {restore.job} resumed step {restore.step} "
                         f"({restore.manifest_key}) under fingerprint {mine[:12]}, written under {theirs[:12]}: "
                         "a silent resume across an environment change")
    return found


def _short(attempts: dict[int, str]) -> str:
    return ", ".join(f"{a}={f[:12]}" for a, f in sorted(attempts.items()))


def _result(verdict: Verdict, weight: float, *evidence: str) -> CheckResult:
    return CheckResult(name=NAME, verdict=verdict, evidence=tuple(evidence), weight=weight)
