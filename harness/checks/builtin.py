"""The harness's own checks, registered under the names experiments use."""

from __future__ import annotations

from harness.checks import (
    checkpoint_integrity,
    crash_sweep,
    duplicates,
    environment,
    gpu_fragmentation,
    lineage,
    oom,
    partial_data,
    preemption,
    quality_gate,
    quota,
    registry_linearizable,
    resume,
    steady_state,
    straggler,
)
from harness.checks.registry import CheckParams, check
from harness.checks.verdict import CheckResult
from harness.evidence.run import RunEvidence


@check(resume.NAME)
def resume_from_checkpoint(evidence: RunEvidence, params: CheckParams) -> CheckResult:
    return resume.check_resume(evidence.events, run_id=evidence.run_id, reference=evidence.reference,
                               inventory=evidence.inventory, weight=params.weight,
                               require_interruption=bool(params.options.get("require_interruption", True)),
                               allow_inflight_checkpoint=bool(params.options.get("allow_inflight_checkpoint", False)))


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


@check(registry_linearizable.NAME)
def registry_linearizable_check(evidence: RunEvidence, params: CheckParams) -> CheckResult:
    return registry_linearizable.check_registry(evidence.events, evidence.inventory, weight=params.weight)


@check(quality_gate.NAME)
def quality_gate_check(evidence: RunEvidence, params: CheckParams) -> CheckResult:
    return quality_gate.check_quality_gate(evidence.events, evidence.inventory, weight=params.weight)


@check(crash_sweep.NAME)
def crash_points_recovered(evidence: RunEvidence, params: CheckParams) -> CheckResult:
    return crash_sweep.check_crash_sweep(evidence.events, run_id=evidence.run_id, weight=params.weight)


@check(checkpoint_integrity.NAME)
def checkpoint_integrity_held(evidence: RunEvidence, params: CheckParams) -> CheckResult:
    return checkpoint_integrity.check_checkpoint_integrity(evidence.events, run_id=evidence.run_id,
                                                           reference=evidence.reference, weight=params.weight)


@check(partial_data.NAME)
def no_training_on_partial_data(evidence: RunEvidence, params: CheckParams) -> CheckResult:
    parts = params.options.get("parts_per_date", partial_data.DEFAULT_PARTS_PER_DATE)
    return partial_data.check_partial_data(evidence.events, evidence.inventory, layout=evidence.facts.layout,
                                           parts_per_date=int(parts), weight=params.weight)


@check(lineage.NAME)
def lineage_check(evidence: RunEvidence, params: CheckParams) -> CheckResult:
    return lineage.check_lineage(evidence.events, evidence.inventory, layout=evidence.facts.layout,
                                 weight=params.weight)


@check(gpu_fragmentation.NAME)
def gpu_schedulable(evidence: RunEvidence, params: CheckParams) -> CheckResult:
    sla = params.options.get("sla_seconds", gpu_fragmentation.DEFAULT_SLA_SECONDS)
    return gpu_fragmentation.check_gpu_schedulable(evidence.events, run_id=evidence.run_id,
                                                   train_step=evidence.facts.train_step, sla_seconds=float(sla),
                                                   weight=params.weight)



@check(oom.NAME)
def oom_recovered(evidence: RunEvidence, params: CheckParams) -> CheckResult:
    return oom.check_oom(evidence.events, run_id=evidence.run_id, weight=params.weight)



@check(straggler.NAME)
def straggler_detected(evidence: RunEvidence, params: CheckParams) -> CheckResult:
    min_factor = params.options.get("min_factor", straggler.DEFAULT_MIN_FACTOR)
    return straggler.check_straggler(evidence.events, run_id=evidence.run_id, min_factor=float(min_factor),
                                     weight=params.weight)


@check(preemption.NAME)
def preemption_checkpointed(evidence: RunEvidence, params: CheckParams) -> CheckResult:
    return preemption.check_preemption(evidence.events, weight=params.weight)


@check(environment.NAME)
def environment_pinned(evidence: RunEvidence, params: CheckParams) -> CheckResult:
    return environment.check_environment(evidence.events, run_id=evidence.run_id, weight=params.weight)
