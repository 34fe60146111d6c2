"""A backfill: the pipeline run for each date of a historical range, a few at a time.

Run ids are ``backfill-<date>``, the same for every backfill of that date, so two
overlapping backfills of one range race on the same logical artifacts, as
re-triggered backfills do in production; the pipeline's conditional writes must
keep one copy of each.

Options (:class:`BackfillOptions`, set before ``start``): ``publish_share`` lets that share of the dates
finish when the backfill is cancelled, so they go through evaluate and register and overlapping backfills
race at publish and register too; ``barrier_before`` runs every date up to a step, then starts that step of
all of them at once (the registry race), at the daily priority so the backfill quota does not serialize them.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta

from harness.cluster.base import PRIORITY_DAILY, Cluster, EventSink
from harness.errors import HarnessError
from harness.workload.pipeline_run import PipelineRun, RunOutcome
from harness.workload.role import StepTemplate, Workload
from harness.workload.settings import PipelineSettings

BACKFILL_CPU_REQUEST = "50m"  # backfills get a small CPU share (process nodes: nice 18)
BACKFILL_CPU_LIMIT = "500m"  # and at most half a core each (a CFS quota where cgroups are writable)


PUBLISH_WAIT_SECONDS = 900.0  # how long a cancel waits for the publishing runs in flight to finish


@dataclass(frozen=True, kw_only=True)
class BackfillOptions:
    """``publish_share`` (0..1): the share of dates, spread evenly and always including the first, whose runs
    a cancel lets finish (through evaluate and register) instead of stopping them. ``barrier_before``: a step
    name; every date runs the steps before it, and once all have ended, that step and the rest of every date
    that succeeded start together (``concurrency`` then bounds only the first part)."""

    publish_share: float = 0.0
    barrier_before: str = ""

    def __post_init__(self) -> None:
        if not 0.0 <= self.publish_share <= 1.0:
            raise ValueError(f"publish_share must be between 0 and 1, got {self.publish_share}")

    def publishes(self, index: int) -> bool:
        """Whether the date at ``index`` (in launch order) is one the backfill lets finish."""
        if self.publish_share <= 0.0:
            return False
        return index == 0 or math.floor(index * self.publish_share) != math.floor((index - 1) * self.publish_share)


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
        self._publishing: set[str] = set()  # names of the runs a cancel lets finish
        self._days: dict[str, str] = {}  # run name -> its date
        self._released: list[PipelineRun] = []  # the parts started at the barrier
        self.options = BackfillOptions()
        self._cancelled = threading.Event()
        self._thread = threading.Thread(target=self._drive, name=f"backfill-{name}", daemon=True)

    def configure(self, options: BackfillOptions) -> None:
        """Set the options; only before ``start``."""
        if self._thread.is_alive() or self._runs:
            raise ValueError(f"backfill {self.name} has started; configure it before start()")
        if options.barrier_before and options.barrier_before not in [s.name for s in self._workload.steps]:
            raise ValueError(f"barrier_before names no step of workload {self._workload.name}: "
                             f"{options.barrier_before!r}")
        self.options = options

    def start(self) -> None:
        self._thread.start()

    def cancel(self, *, publish_wait: float = PUBLISH_WAIT_SECONDS) -> None:
        """Launch no more dates and stop the runs in flight (their pods get their grace period); the
        publishing runs in flight are first given up to ``publish_wait`` seconds to finish. Idempotent."""
        self._cancelled.set()
        self._thread.join(60)
        for run in list(self._runs):  # the others first: their capacity goes to the publishing runs
            if run.name not in self._publishing and run.outcome is None:
                run.cancel()
        deadline = time.monotonic() + publish_wait
        for run in list(self._runs):
            if run.name in self._publishing and run.outcome is None:
                try:
                    run.wait(timeout=max(0.0, deadline - time.monotonic()))
                except HarnessError:
                    pass  # still going at the deadline: stopped below
        for run in list(self._runs):
            if run.outcome is None:
                run.cancel()

    def outcomes(self) -> list[RunOutcome]:
        return [r.outcome for r in self._runs if r.outcome is not None]

    def released_outcomes(self) -> list[RunOutcome]:
        """The outcomes of the parts started together at the barrier (none without a barrier)."""
        return [r.outcome for r in self._released if r.outcome is not None]

    def wait(self, *, timeout: float) -> bool:
        """Block until every date was launched (and released at the barrier) and every run ended, or
        ``timeout`` seconds passed; True when everything ended."""
        deadline = time.monotonic() + timeout
        self._thread.join(max(0.0, timeout))
        while time.monotonic() < deadline and any(r.outcome is None for r in list(self._runs)):
            time.sleep(0.2)
        return not self._thread.is_alive() and all(r.outcome is not None for r in list(self._runs))

    def _drive(self) -> None:
        pending = list(enumerate(self._dates))
        first, rest = self._split_steps()
        while pending and not self._cancelled.is_set():
            active = [r for r in self._runs if r.outcome is None]
            if len(active) >= self._concurrency:
                self._cancelled.wait(0.2)
                continue
            index, day = pending.pop(0)
            run = self._run(day, first)
            if self.options.publishes(index):
                self._publishing.add(run.name)
            self._runs.append(run)
            run.start()
        if rest:
            self._release(rest)

    def _split_steps(self) -> tuple[tuple[StepTemplate, ...], tuple[StepTemplate, ...]]:
        """The steps before the barrier, and the barrier's step with those after it (none: no barrier)."""
        steps = tuple(self._workload.steps)
        names = [s.name for s in steps]
        if not self.options.barrier_before:
            return steps, ()
        at = names.index(self.options.barrier_before)
        return steps[:at], steps[at:]

    def _release(self, rest: tuple[StepTemplate, ...]) -> None:
        """Once every date's first part ended, start the rest of each date that succeeded, together."""
        first_parts = list(self._runs)
        while any(r.outcome is None for r in first_parts):
            if self._cancelled.wait(0.2):
                return
        ready = [r for r in first_parts if r.outcome is not None and r.outcome.succeeded]
        # At the daily priority, outside the backfill pods' quota (one at a time on the embedded cluster):
        # released together, they must be able to run together, or there is no race.
        runs = [self._run(self._days[r.name], rest, publishing=r.name in self._publishing,
                          priority_class=PRIORITY_DAILY) for r in ready]
        self._runs.extend(runs)
        self._released.extend(runs)
        for run in runs:  # back to back: the racing steps start as close together as the cluster allows
            run.start()

    def _run(self, day: str, steps: Sequence[StepTemplate], *, publishing: bool = False,
             priority_class: str = "") -> PipelineRun:
        """A run of ``day`` over ``steps`` (not started); its name is the same for both parts of a date."""
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
            steps=steps,
            priority_class=priority_class,
        )
        self._days[run.name] = day
        if publishing:
            self._publishing.add(run.name)
        return run
