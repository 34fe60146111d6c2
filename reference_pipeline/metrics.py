"""Prometheus metrics, served on $POD_IP (default 127.0.0.1), port METRICS_PORT, when that is set.

Every series carries ``pipeline``, ``run_id`` and ``kind`` (daily/backfill), so
SLOs can be written per run kind. Without a port the same calls are no-ops on a
private registry, so steps never check whether metrics are on.
"""

from __future__ import annotations

import os
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from .config import Config

_LABELS = ("pipeline", "run_id", "kind")
_SECONDS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The pipeline's metric series, bound to one run's labels."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self.registry = CollectorRegistry()
        labels = {"pipeline": config.pipeline, "run_id": config.run_id, "kind": config.kind}

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, _LABELS, registry=self.registry)

        self.train_step = gauge("pipeline_train_step", "Last completed training step.").labels(**labels)
        self.train_steps = Counter(
            "pipeline_train_steps", "Optimizer steps completed.", _LABELS, registry=self.registry
        ).labels(**labels)
        self.last_step_timestamp = gauge(
            "pipeline_last_step_timestamp_seconds", "Unix time of the last completed step."
        ).labels(**labels)
        self.checkpoint_save_seconds = Histogram(
            "pipeline_checkpoint_save_seconds", "Checkpoint save latency (snapshot + upload + manifest).",
            _LABELS, buckets=_SECONDS_BUCKETS, registry=self.registry,
        ).labels(**labels)
        self.checkpoint_restore_seconds = Histogram(
            "pipeline_checkpoint_restore_seconds", "Checkpoint restore latency (list + download + verify + load).",
            _LABELS, buckets=_SECONDS_BUCKETS, registry=self.registry,
        ).labels(**labels)
        self.checkpoint_failures = Counter(
            "pipeline_checkpoint_failures", "Checkpoints that could not be saved or restored.",
            _LABELS, registry=self.registry,
        ).labels(**labels)
        self.s3_retries = Counter(
            "pipeline_s3_retries", "Retries botocore made for S3 requests.", _LABELS, registry=self.registry
        ).labels(**labels)
        self._step_duration = Gauge(
            "pipeline_step_duration_seconds", "Duration of a pipeline step process's work.",
            (*_LABELS, "step"), registry=self.registry,
        )
        self.run_duration = gauge(
            "pipeline_run_duration_seconds", "Whole pipeline run duration, set when register finishes."
        ).labels(**labels)
        if config.metrics_port is not None:
            # The pod's own IP (POD_IP, from the downward API), where Prometheus scrapes it: 127.0.0.1 on a
            # process node, the pod network's address in a container; never every interface of a shared host.
            start_http_server(config.metrics_port, addr=os.environ.get("POD_IP") or "127.0.0.1",
                              registry=self.registry)

    def step_done(self, step: int) -> None:
        """Record one completed optimizer step."""
        self.train_step.set(step)
        self.train_steps.inc()
        self.last_step_timestamp.set(time.time())

    def step_duration(self, step_name: str, seconds: float) -> None:
        c = self._config
        self._step_duration.labels(pipeline=c.pipeline, run_id=c.run_id, kind=c.kind, step=step_name).set(seconds)
