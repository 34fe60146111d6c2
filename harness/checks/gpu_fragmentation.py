"""``gpu-schedulable``: the daily run's GPU training pods were scheduled within their SLA.

Reads the GPU sampler's events (:mod:`harness.services.gpu_sampler`): ``GpuPodCreated``
and ``GpuPodScheduled`` give each GPU pod's wait from creation to binding (Kubernetes'
own timestamps), ``GpuCapacitySampled`` the stranded GPUs (idle GPUs that no pending
pod could use) over the wait. The judged pods are the run's training step's pods
(labels ``run=<run id>`` and ``step=<train step>``) that request GPUs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.checks.verdict import CheckResult, Verdict
from harness.history.events import Event, GpuCapacitySampled, GpuPodCreated, GpuPodScheduled

__all__ = ["NAME", "StrandedSummary", "check_gpu_schedulable", "summarize_stranded"]

NAME = "gpu-schedulable"
DEFAULT_SLA_SECONDS = 60.0


@dataclass(frozen=True, kw_only=True)
class StrandedSummary:
    """Stranded GPUs over a window: the most, the time-weighted mean, and how long any were stranded."""

    samples: int
    max_stranded: int
    mean_stranded: float
    stranded_seconds: float
    max_idle_total: int
    preemptions: int


def summarize_stranded(samples: Sequence[GpuCapacitySampled], start: float, end: float) -> StrandedSummary:
    """Stranded GPUs over [start, end]. Each sample holds from its time until the next sample (the
    last one until ``end``), so the sample in force at ``start`` counts too; the mean is weighted by
    how long each sample held within the window."""
    ordered = sorted(samples, key=lambda s: s.ts)
    spans: list[tuple[GpuCapacitySampled, float]] = []
    for sample, after in zip(ordered, [*ordered[1:], None], strict=True):
        until = after.ts if after is not None else max(end, sample.ts)
        if sample.ts <= end and until >= start and (until > start or sample.ts >= start):
            spans.append((sample, max(0.0, min(until, end) - max(sample.ts, start))))
    if not spans:
        return StrandedSummary(samples=0, max_stranded=0, mean_stranded=0.0, stranded_seconds=0.0,
                               max_idle_total=0, preemptions=0)
    total = sum(span for _, span in spans)
    mean = (sum(s.stranded * span for s, span in spans) / total if total > 0
            else sum(s.stranded for s, _ in spans) / len(spans))
    return StrandedSummary(samples=len(spans), max_stranded=max(s.stranded for s, _ in spans), mean_stranded=mean,
                           stranded_seconds=sum(span for s, span in spans if s.stranded > 0),
                           max_idle_total=max(s.idle_total for s, _ in spans),
                           preemptions=max(s.preemptions for s, _ in spans))


def _describe(summary: StrandedSummary) -> str:
    return (f"stranded GPUs max {summary.max_stranded}, mean {summary.mean_stranded:.1f}, for "
            f"{summary.stranded_seconds:.0f} s over {summary.samples} samples (up to {summary.max_idle_total} "
            f"idle cluster-wide); {summary.preemptions} preemptions")


def _picked(labels: str, run_id: str, train_step: str) -> bool:
    have = set(filter(None, labels.split(",")))
    return {f"run={run_id}", f"step={train_step}"} <= have


def check_gpu_schedulable(events: Sequence[Event], *, run_id: str, train_step: str, sla_seconds: float,
                          weight: float = 1.0) -> CheckResult:
    """Pass when every GPU pod of the run's training step was bound within ``sla_seconds`` of its
    creation; fail when one waited longer (bound late, or still pending that long when sampling
    ended); unknown without GPU samples, without such a pod, or when a pod was still pending at the
    end of sampling but for less than the SLA."""
    samples = [e for e in events if isinstance(e, GpuCapacitySampled)]
    created = [e for e in events if isinstance(e, GpuPodCreated) and _picked(e.labels, run_id, train_step)]
    bound = {e.pod: e for e in events if isinstance(e, GpuPodScheduled)}
    if not samples:
        return CheckResult(name=NAME, verdict="unknown", weight=weight, evidence=(
            "no GPU capacity samples in this history (the gpu-fragmentation fault runs the sampler)",))
    if not created:
        return CheckResult(name=NAME, verdict="unknown", weight=weight, evidence=(
            f"no pod of run {run_id}'s {train_step} step requested GPUs while sampling "
            f"({len(samples)} samples); give the pipeline settings gpus: N",))
    last_sample = max(s.ts for s in samples)
    evidence: list[str] = []
    verdicts: list[Verdict] = []
    for pod in sorted(created, key=lambda e: e.ts):
        scheduled = bound.get(pod.pod)
        end = scheduled.ts if scheduled is not None else last_sample
        wait = max(0.0, end - pod.ts)
        summary = summarize_stranded(samples, pod.ts, end)
        figures = f"while it waited: {_describe(summary)}"
        if scheduled is not None:
            ok = wait <= sla_seconds
            verdicts.append("pass" if ok else "fail")
            evidence.append(f"{pod.pod} ({pod.gpus} GPUs) scheduled on {scheduled.node} {wait:.0f} s after its "
                            f"creation ({'within' if ok else 'beyond'} the {sla_seconds:g} s SLA); {figures}")
        elif wait > sla_seconds:
            verdicts.append("fail")
            evidence.append(f"{pod.pod} ({pod.gpus} GPUs) still pending {wait:.0f} s after its creation when "
                            f"sampling ended (SLA {sla_seconds:g} s); {figures}")
        else:
            verdicts.append("unknown")
            evidence.append(f"{pod.pod} ({pod.gpus} GPUs) pending {wait:.0f} s when sampling ended, within the "
                            f"{sla_seconds:g} s SLA: cannot tell whether it would have been scheduled in time")
    first = min(s.ts for s in samples)
    evidence.append(f"over the {last_sample - first:.0f} s sampled: "
                    f"{_describe(summarize_stranded(samples, first, last_sample))}")
    verdict: Verdict = "fail" if "fail" in verdicts else "unknown" if "unknown" in verdicts else "pass"
    return CheckResult(name=NAME, verdict=verdict, evidence=tuple(evidence), weight=weight)
