"""What the harness reads from the live services once an experiment has ended.

The checks never touch the cluster: everything they need from Prometheus (SLO
range queries) is fetched here, once, and handed to them as plain records. The
query results are also kept in the run folder (``prometheus.json``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.checks.slo import SloSpec, render
from harness.errors import ServiceError
from harness.history.clock import HarnessClock
from harness.history.events import Event, TrainStep
from harness.services.prometheus_query import RangeResult, query_range

SCRAPE_INTERVAL_SECONDS = 1.0


@dataclass(frozen=True, kw_only=True)
class SloObservation:
    spec: SloSpec
    promql: str  # as run, placeholders filled in
    result: RangeResult | None  # None when the query could not run
    error: str


def training_window(events: Sequence[Event], *, run_id: str) -> tuple[float, float] | None:
    """From the first to the last training step of ``run_id``, on the harness's clock (which the
    queries' time range is in); None when it never trained."""
    clock = HarnessClock(events)
    steps = [clock.time(e) for e in events if isinstance(e, TrainStep) and e.run_id == run_id]
    return (min(steps), max(steps)) if steps else None


def observe_slos(
    slos: Sequence[SloSpec],
    *,
    prometheus_url: str,
    events: Sequence[Event],
    run_id: str,
    kind: str,
    started: float,
    ended: float,
) -> list[SloObservation]:
    """Run each SLO's range query over its window."""
    if not slos:
        return []
    # The last samples of the window are scraped up to one interval after it ends.
    time.sleep(max(0.0, ended + SCRAPE_INTERVAL_SECONDS + 0.5 - time.time()))
    observations = []
    for spec in slos:
        window = (started, ended) if spec.window == "experiment" else training_window(events, run_id=run_id)
        if window is None:
            observations.append(SloObservation(spec=spec, promql=spec.promql, result=None,
                                               error=f"run {run_id} never trained, so its training window is empty"))
            continue
        promql = render(spec, run_id=run_id, kind=kind, start=window[0], end=window[1])
        try:
            result = query_range(url=prometheus_url, promql=promql, start=window[0], end=window[1])
            observations.append(SloObservation(spec=spec, promql=promql, result=result, error=""))
        except ServiceError as exc:
            observations.append(SloObservation(spec=spec, promql=promql, result=None, error=str(exc)))
    return observations


def save_observations(observations: Sequence[SloObservation], path: Path) -> None:
    path.write_text(json.dumps([asdict(o) for o in observations], indent=1, default=str), encoding="utf-8")
