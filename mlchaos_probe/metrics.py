"""Prometheus metrics of one pipeline run, served on ``addr:port`` when a port is given.

Every series carries ``pipeline``, ``run_id`` and ``kind`` (daily/backfill), so SLOs can be written per run
kind. Without a port the same calls are cheap no-ops on a private registry, so a pipeline never checks
whether metrics are on. The names are the defaults a pipeline.yaml's ``metrics`` section assumes.
"""

from __future__ import annotations

import os
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

_LABELS = ("pipeline", "run_id", "kind")
_SECONDS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class PipelineMetrics:
    """The standard pipeline series, bound to one run's labels."""

    def __init__(self, *, pipeline: str, run_id: str, kind: str, port: int | None = None,
                 addr: str | None = None) -> None:
        """Serve on ``addr`` (default $POD_IP, else 127.0.0.1) at ``port``; ``port`` None: serve nothing.

        Raises ``OSError`` naming the address when the port cannot be bound.
        """
        self.registry = CollectorRegistry()
        self.port = port
        self._labels = {"pipeline": pipeline, "run_id": run_id, "kind": kind}
        labels = self._labels
        registry = self.registry

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, _LABELS, registry=registry)

        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, _LABELS, registry=registry)

        def histogram(name: str, doc: str) -> Histogram:
            return Histogram(name, doc, _LABELS, buckets=_SECONDS_BUCKETS, registry=registry)

        self._train_step = gauge("pipeline_train_step", "Last completed training step.").labels(**labels)
        self._train_steps = counter("pipeline_train_steps", "Optimizer steps completed.").labels(**labels)
        self._last_step_timestamp = gauge(
            "pipeline_last_step_timestamp_seconds", "Unix time of the last completed step.").labels(**labels)
        self._checkpoint_save_seconds = histogram(
            "pipeline_checkpoint_save_seconds", "Checkpoint save latency (snapshot + upload + manifest).",
        ).labels(**labels)
        self._checkpoint_restore_seconds = histogram(
            "pipeline_checkpoint_restore_seconds", "Checkpoint restore latency (list + download + verify + load).",
        ).labels(**labels)
        self._checkpoint_failures = counter(
            "pipeline_checkpoint_failures", "Checkpoints that could not be saved or restored.").labels(**labels)
        self._s3_retries = counter("pipeline_s3_retries", "Retries made for S3 requests.").labels(**labels)
        self._step_duration = Gauge("pipeline_step_duration_seconds", "Duration of a pipeline step process's work.",
                                    (*_LABELS, "step"), registry=registry)
        self._run_duration = gauge("pipeline_run_duration_seconds",
                                   "Whole pipeline run duration, set when the last step finishes.").labels(**labels)
        if port is not None:
            # The pod's own IP, where Prometheus scrapes it: never every interface of a shared host.
            host = addr or os.environ.get("POD_IP") or "127.0.0.1"
            try:
                start_http_server(port, addr=host, registry=registry)
            except OSError as error:
                raise OSError(f"cannot serve metrics on {host}:{port} ({error}); choose a free port") from None

    @classmethod
    def from_env(cls, *, step_name: str) -> PipelineMetrics:
        """Metrics of the run the harness launched this step for: PIPELINE_NAME, RUN_ID, RUN_KIND, METRICS_PORT.

        Raises ``ValueError`` naming the variable when METRICS_PORT is not a port number, and ``OSError`` when
        the port cannot be bound (``step_name`` is named in both).
        """
        raw_port = os.environ.get("METRICS_PORT", "").strip()
        port: int | None = None
        if raw_port:
            try:
                port = int(raw_port)
            except ValueError:
                port = -1
            if not 0 < port < 65536:
                raise ValueError(f"step {step_name}: METRICS_PORT={raw_port!r} is not a TCP port number (1-65535)")
        try:
            return cls(pipeline=os.environ.get("PIPELINE_NAME", ""), run_id=os.environ.get("RUN_ID", ""),
                       kind=os.environ.get("RUN_KIND", "daily"), port=port)
        except OSError as error:
            raise OSError(f"step {step_name}: {error}") from None

    def step_done(self, step: int) -> None:
        """Record one completed optimizer step; ``step`` is the number of steps done."""
        self._train_step.set(step)
        self._train_steps.inc()
        self._last_step_timestamp.set(time.time())

    def checkpoint_saved(self, seconds: float) -> None:
        """Record a complete checkpoint save that took ``seconds``."""
        self._checkpoint_save_seconds.observe(seconds)

    def checkpoint_restored(self, seconds: float) -> None:
        """Record a checkpoint restore that took ``seconds``."""
        self._checkpoint_restore_seconds.observe(seconds)

    def checkpoint_failed(self) -> None:
        """Count a checkpoint that could not be saved or restored."""
        self._checkpoint_failures.inc()

    def s3_retries(self, n: int = 1) -> None:
        """Count ``n`` retries of storage requests (0 is allowed: a request that needed none)."""
        self._s3_retries.inc(n)

    def step_duration(self, step_name: str, seconds: float) -> None:
        """Set how long pipeline step ``step_name``'s work took in this process."""
        self._step_duration.labels(**self._labels, step=step_name).set(seconds)

    def run_duration(self, seconds: float) -> None:
        """Set the whole run's duration (by the last step)."""
        self._run_duration.set(seconds)

    def linger(self) -> None:
        """When serving, sleep $METRICS_LINGER_SECONDS so the last scrape sees the final values.

        Raises ``ValueError`` naming the variable when it is not a number.
        """
        if self.port is None:
            return
        raw = os.environ.get("METRICS_LINGER_SECONDS", "").strip() or "0"
        try:
            seconds = float(raw)
        except ValueError:
            raise ValueError(f"METRICS_LINGER_SECONDS={raw!r} is not a number of seconds") from None
        time.sleep(max(seconds, 0.0))
