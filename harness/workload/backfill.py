"""A backfill: the pipeline run for each date of a historical range, a few at a time.

Run ids are ``backfill-<date>``, the same for every backfill of that date, so two
overlapping backfills of one range race on the same logical artifacts, as
re-triggered backfills do in production; the pipeline's conditional writes must
keep one copy of each.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, timedelta

from harness.cluster.base import Cluster, EventSink
from harness.workload.pipeline_run import PipelineRun, RunOutcome
from harness.workload.role import Workload
from harness.workload.settings import PipelineSettings

BACKFILL_CPU_REQUEST = "50m"  # backfills get a small CPU share (process nodes: nice 18)
BACKFILL_CPU_LIMIT = "500m"  # and at most half a core each (a CFS quota where cgroups are writable)


def dates_before(end: str, days: int) -> list[str]:
    """The ``days`` dates before ``end`` (exclusive), oldest first."""
    last = date.fromisoformat(end)
    return [(last - timedelta(days=n)).isoformat() for n in range(days, 0, -1)]


class Backfill:
    """Runs the pipeline for ``dates`` with at most ``concurrency`` runs in flight."""

    def __init__(
        self,
        *,
        name: str,
        cluster: Cluster,
        sink: EventSink,
        workload: Workload,
        settings: PipelineSettings,
        dates: Sequence[str],
        concurrency: int,
        bucket: str,
        s3_env: dict[str, str],
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.name = name
        self._cluster = cluster
        self._sink = sink
        self._workload = workload
        self._settings = settings
        self._dates = list(dates)
        self._concurrency = concurrency
        self._bucket = bucket
        self._s3_env = s3_env
        self._runs: list[PipelineRun] = []
        self._cancelled = threading.Event()
        self._thread = threading.Thread(target=self._drive, name=f"backfill-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        """Launch no more dates and stop the runs in flight (their pods get their grace period)."""
        self._cancelled.set()
        self._thread.join(60)
        for run in list(self._runs):
            if run.outcome is None:
                run.cancel()

    def outcomes(self) -> list[RunOutcome]:
        return [r.outcome for r in self._runs if r.outcome is not None]

    def _drive(self) -> None:
        pending = list(self._dates)
        while pending and not self._cancelled.is_set():
            active = [r for r in self._runs if r.outcome is None]
            if len(active) >= self._concurrency:
                self._cancelled.wait(0.2)
                continue
            day = pending.pop(0)
            run = PipelineRun(
                cluster=self._cluster,
                sink=self._sink,
                workload=self._workload,
                settings=replace(self._settings, date=day),
                run_id=f"backfill-{day}",
                kind="backfill",
                bucket=self._bucket,
                s3_env=self._s3_env,
                name=f"{self.name}-{day}",
                cpu_request=BACKFILL_CPU_REQUEST,
                cpu_limit=BACKFILL_CPU_LIMIT,
            )
            self._runs.append(run)
            run.start()
