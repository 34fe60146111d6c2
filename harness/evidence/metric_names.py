"""The Prometheus names behind the standard SLOs, as a workload declares them."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True, kw_only=True)
class MetricNames:
    """Series names; every series carries the labels ``pipeline``, ``run_id`` and ``kind``.

    The defaults are the probe library's (``mlchaos_probe.metrics``)."""

    last_step_timestamp: str = "pipeline_last_step_timestamp_seconds"  # gauge
    checkpoint_save_seconds: str = "pipeline_checkpoint_save_seconds"  # histogram
    checkpoint_restore_seconds: str = "pipeline_checkpoint_restore_seconds"  # histogram
    checkpoint_failures: str = "pipeline_checkpoint_failures_total"  # counter
    run_duration: str = "pipeline_run_duration_seconds"  # gauge, kind daily|backfill
    s3_retries: str = "pipeline_s3_retries_total"  # counter


METRIC_ROLES: tuple[str, ...] = tuple(f.name for f in fields(MetricNames))
