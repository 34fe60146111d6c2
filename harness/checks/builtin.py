"""The harness's own checks, registered under the names experiments use."""

from __future__ import annotations

from harness.checks import duplicates, quota, resume, steady_state
from harness.checks.registry import CheckParams, check
from harness.checks.verdict import CheckResult
from harness.evidence.run import RunEvidence


@check(resume.NAME)
def resume_from_checkpoint(evidence: RunEvidence, params: CheckParams) -> CheckResult:
    return resume.check_resume(evidence.events, run_id=evidence.run_id, reference=evidence.reference,
                               inventory=evidence.inventory, weight=params.weight,
                               require_interruption=bool(params.options.get("require_interruption", True)))


@check(steady_state.NAME)
def steady_state_held(evidence: RunEvidence, params: CheckParams) -> CheckResult:
    return steady_state.check_steady_state(evidence.events, weight=params.weight)


@check(duplicates.NAME)
def zero_duplicate_artifacts(evidence: RunEvidence, params: CheckParams) -> CheckResult:
    return duplicates.check_duplicates(evidence.events, evidence.inventory, layout=evidence.facts.layout,
                                       weight=params.weight)


@check(quota.NAME)
def pod_quota(evidence: RunEvidence, params: CheckParams) -> CheckResult:
    return quota.check_quota(evidence.events, total=evidence.pod_limit, scoped=evidence.scoped_quotas,
                             weight=params.weight, require_scoped=bool(params.options.get("require_scoped", True)))
