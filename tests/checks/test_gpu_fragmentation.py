"""gpu-schedulable on hand-built histories: scheduled in time, too late, never, and undecidable."""

from __future__ import annotations

from harness.checks.gpu_fragmentation import check_gpu_schedulable, summarize_stranded
from harness.history.events import Event, GpuCapacitySampled, GpuPodCreated, GpuPodScheduled

RUN = "gpu-1"
LABELS = f"job-name={RUN}-train,kind=daily,run={RUN},step=train"
POD = f"{RUN}-train-abcde"


def _samples(start: float, end: float, *, stranded_until: float, preempt_at: float | None = None) -> list[Event]:
    """One sample a second: 10 idle GPUs stranded (5+5, 6 wanted) until ``stranded_until``."""
    events: list[Event] = []
    t = start
    while t <= end:
        fragmented = t < stranded_until
        events.append(GpuCapacitySampled(
            ts=t, idle="node-a=5,node-b=5" if fragmented else "node-a=2,node-b=5",
            pending=f"ns/{POD}=6" if fragmented else "", stranded=10 if fragmented else 0,
            idle_total=10 if fragmented else 7, preemptions=int(preempt_at is not None and t >= preempt_at)))
        t += 1.0
    return events


def _judge(events: list[Event], sla: float = 30.0) -> tuple[str, tuple[str, ...]]:
    result = check_gpu_schedulable(events, run_id=RUN, train_step="train", sla_seconds=sla)
    return result.verdict, result.evidence


def test_a_training_pod_bound_within_the_sla_passes() -> None:
    events = [*_samples(100, 140, stranded_until=108, preempt_at=105),
              GpuPodCreated(ts=100.0, pod=POD, job=f"{RUN}-train", gpus=6, labels=LABELS),
              GpuPodScheduled(ts=108.0, pod=POD, job=f"{RUN}-train", node="node-a", gpus=6, created=100.0,
                              labels=LABELS)]
    verdict, evidence = _judge(events)
    assert verdict == "pass", evidence
    assert "8 s after its creation (within the 30 s SLA)" in evidence[0]
    assert "max 10" in evidence[0] and "1 preemptions" in evidence[0]


def test_a_training_pod_bound_after_the_sla_fails_with_stranded_capacity() -> None:
    events = [*_samples(100, 160, stranded_until=150),
              GpuPodCreated(ts=100.0, pod=POD, job=f"{RUN}-train", gpus=6, labels=LABELS),
              GpuPodScheduled(ts=150.0, pod=POD, job=f"{RUN}-train", node="node-a", gpus=6, created=100.0,
                              labels=LABELS)]
    verdict, evidence = _judge(events)
    assert verdict == "fail", evidence
    assert "50 s after its creation (beyond the 30 s SLA)" in evidence[0]
    assert "max 10, mean 10.0, for 50 s" in evidence[0]


def test_a_training_pod_still_pending_past_the_sla_fails() -> None:
    events = [*_samples(100, 200, stranded_until=1e9),
              GpuPodCreated(ts=110.0, pod=POD, job=f"{RUN}-train", gpus=6, labels=LABELS)]
    verdict, evidence = _judge(events)
    assert verdict == "fail", evidence
    assert "still pending 90 s" in evidence[0]
    assert "over the 100 s sampled: stranded GPUs max 10, mean 10.0, for 100 s" in evidence[-1]


def test_a_pod_pending_shorter_than_the_sla_when_sampling_ended_is_unknown() -> None:
    events = [*_samples(100, 110, stranded_until=1e9),
              GpuPodCreated(ts=100.0, pod=POD, job=f"{RUN}-train", gpus=6, labels=LABELS)]
    assert _judge(events)[0] == "unknown"


def test_without_samples_or_without_the_runs_gpu_pod_it_is_unknown() -> None:
    created = GpuPodCreated(ts=100.0, pod=POD, job=f"{RUN}-train", gpus=6, labels=LABELS)
    verdict, evidence = _judge([created])
    assert verdict == "unknown" and "no GPU capacity samples" in evidence[0]
    other = GpuPodCreated(ts=100.0, pod="filler", job="filler", gpus=3, labels="mlchaos.io/gpu-filler=ab")
    verdict, evidence = _judge([*_samples(100, 110, stranded_until=0), other])
    assert verdict == "unknown" and "requested GPUs" in evidence[0]


def test_stranded_summary_weights_each_sample_until_the_next() -> None:
    samples = [GpuCapacitySampled(ts=0.0, idle="", pending="", stranded=10, idle_total=10),
               GpuCapacitySampled(ts=3.0, idle="", pending="", stranded=0, idle_total=4, preemptions=2),
               GpuCapacitySampled(ts=99.0, idle="", pending="", stranded=8, idle_total=8)]
    summary = summarize_stranded([s for s in samples if isinstance(s, GpuCapacitySampled)], 0.0, 4.0)
    assert summary.samples == 2 and summary.max_stranded == 10
    assert summary.mean_stranded == 7.5 and summary.stranded_seconds == 3.0 and summary.preemptions == 2
    at_once = summarize_stranded([s for s in samples if isinstance(s, GpuCapacitySampled)], 1.0, 1.0)
    assert at_once.samples == 1 and at_once.max_stranded == 10  # the sample in force at a zero-length wait
