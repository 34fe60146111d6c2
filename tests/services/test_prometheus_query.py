"""Range queries and the standard SLOs against a real Prometheus scraping fake pipeline pods.

One scenario, run once for the module: training pod A steps every 0.1 s for
~3 s and disappears; ~3 s later (half of it spent by pod B "restoring", its
last-step gauge still 0) pod B steps for ~2 s, sets the daily run duration,
holds it, and disappears. Both save checkpoints into the save histogram and
count S3 retries. Every wait polls Prometheus's API for the condition.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from harness import lifecycle
from harness.checks.slo import STANDARD_SLOS, evaluate_slo, render
from harness.errors import ServiceError
from harness.services.prometheus import PrometheusServer, ScrapeTarget
from harness.services.prometheus_query import RangeResult, query_instant, query_range
from harness.undo import UndoLog

RUN_ID = "daily-2024-01-01"
LABELS = ("pipeline", "run_id", "kind")
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)  # as reference_pipeline/metrics.py
SAVES_A = (0.3, 0.4, 0.7)
SAVES_B = (0.6, 1.2, 0.3)
RETRIES_A, RETRIES_B = 3, 1
DAILY_DURATION = 42.5


class FakePod:
    """A training pod's metrics endpoint, named as the reference pipeline names its series."""

    def __init__(self, name: str) -> None:
        self.name = name
        registry = CollectorRegistry()
        labels = {"pipeline": "reference", "run_id": RUN_ID, "kind": "daily"}
        self.train_step = Gauge("pipeline_train_step", "step", LABELS, registry=registry).labels(**labels)
        self.last_step = Gauge(
            "pipeline_last_step_timestamp_seconds", "ts", LABELS, registry=registry
        ).labels(**labels)
        self.saves = Histogram(
            "pipeline_checkpoint_save_seconds", "save", LABELS, buckets=BUCKETS, registry=registry
        ).labels(**labels)
        self.failures = Counter("pipeline_checkpoint_failures", "f", LABELS, registry=registry).labels(**labels)
        self.retries = Counter("pipeline_s3_retries", "r", LABELS, registry=registry).labels(**labels)
        self.run_duration = Gauge("pipeline_run_duration_seconds", "d", LABELS, registry=registry).labels(**labels)
        self.port = lifecycle.free_port()
        self._server, self._thread = start_http_server(self.port, addr="127.0.0.1", registry=registry)
        self.steps: list[float] = []

    @property
    def target(self) -> ScrapeTarget:
        return ScrapeTarget(address=f"127.0.0.1:{self.port}", labels={"pod": self.name, "job": "train", "node": "n1"})

    def step(self) -> None:
        now = time.time()
        self.steps.append(now)
        self.train_step.set(len(self.steps))
        self.last_step.set(now)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def wait_for(predicate: Callable[[], bool], *, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)


def scraped(url: str, promql: str, value: float | None = None) -> Callable[[], bool]:
    """True once ``promql`` returns a series (with ``value``, when given)."""

    def check() -> bool:
        series = query_instant(url=url, promql=promql)
        return bool(series) and (value is None or any(s.points[0][1] == value for s in series))

    return check


@dataclass(frozen=True)
class Scenario:
    url: str
    started: float
    ended: float
    steps_a: tuple[float, ...]
    steps_b: tuple[float, ...]

    @property
    def gap(self) -> float:
        return self.steps_b[0] - self.steps_a[-1]


def run_for(seconds: float, pod: FakePod, saves: tuple[float, ...], retries: int) -> None:
    """Step every 0.1 s for ``seconds``, spreading the saves and retries over the steps."""
    n = round(seconds / 0.1)
    save_at = {round((i + 1) * n / (len(saves) + 1)): s for i, s in enumerate(saves)}
    retry_at = {round((i + 1) * n / (retries + 1)) for i in range(retries)}
    first = time.monotonic()
    for i in range(n):
        pod.step()
        if i in save_at:
            pod.saves.observe(save_at[i])
        if i in retry_at:
            pod.retries.inc()
        time.sleep(max(0.0, first + (i + 1) * 0.1 - time.monotonic()))


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    tmp = tmp_path_factory.mktemp("promq")
    undo = UndoLog(tmp / "undo")
    pods: list[FakePod] = []
    try:
        with PrometheusServer(workdir=tmp / "prom", undo=undo) as prom:
            url = prom.url
            started = time.time()
            a = FakePod("train-a")
            pods.append(a)
            prom.set_targets([a.target])
            wait_for(scraped(url, 'up{pod="train-a"} == 1'), what="the first scrape of pod A")
            run_for(3.0, a, SAVES_A, RETRIES_A)
            wait_for(
                scraped(url, 'pipeline_last_step_timestamp_seconds{pod="train-a"}', a.steps[-1]),
                what="Prometheus to see pod A's last step",
            )
            prom.set_targets([])  # pod A exits
            a.stop()
            time.sleep(max(0.0, a.steps[-1] + 1.5 - time.time()))
            b = FakePod("train-b")  # restarted pod: up, restoring, no step yet (gauge 0)
            pods.append(b)
            prom.set_targets([b.target])
            wait_for(scraped(url, 'pipeline_last_step_timestamp_seconds{pod="train-b"}', 0.0), what="pod B's scrape")
            time.sleep(max(0.0, a.steps[-1] + 3.0 - time.time()))
            run_for(2.0, b, SAVES_B, RETRIES_B)
            b.run_duration.set(DAILY_DURATION)  # the last step of the daily run
            wait_for(
                scraped(url, 'pipeline_run_duration_seconds{pod="train-b",kind="daily"}', DAILY_DURATION),
                what="the daily run duration",
            )
            wait_for(
                scraped(url, 'pipeline_last_step_timestamp_seconds{pod="train-b"}', b.steps[-1]),
                what="Prometheus to see pod B's last step",
            )
            prom.set_targets([])
            b.stop()
            wait_for(lambda: not scraped(url, 'up{pod="train-b"}')(), what="pod B's series to go stale")
            yield Scenario(url=url, started=started, ended=time.time(), steps_a=tuple(a.steps), steps_b=tuple(b.steps))
    finally:
        for pod in pods:
            pod.stop()
    assert undo.pending() == []


def slo_range(s: Scenario, name: str, *, window: str | None = None) -> RangeResult:
    spec = STANDARD_SLOS[name]
    if (window or spec.window) == "training":
        start, end = s.steps_a[0], s.steps_b[-1]
    else:
        start, end = s.started, s.ended
    promql = render(spec, run_id=RUN_ID, kind="daily", start=start, end=end)
    return query_range(url=s.url, promql=promql, start=start, end=end)


def test_range_query_returns_each_pods_series_with_labels(scenario: Scenario) -> None:
    result = query_range(
        url=scenario.url, promql=f'pipeline_train_step{{run_id="{RUN_ID}"}}', start=scenario.started, end=scenario.ended
    )
    pods = sorted(s.label("pod") for s in result.series)
    assert pods == ["train-a", "train-b"]
    a = next(s for s in result.series if s.label("pod") == "train-a")
    assert a.label("job") == "train" and a.label("run_id") == RUN_ID
    assert max(v for _, v in a.points) == len(scenario.steps_a)
    times = [t for s in result.series for t, _ in s.points]
    assert scenario.started <= min(times) and max(times) <= scenario.ended


def test_range_grid_is_anchored_at_end_with_subsecond_times(scenario: Scenario) -> None:
    start, end = scenario.started, scenario.ended
    (series,) = query_range(url=scenario.url, promql="time()", start=start, end=end, step_seconds=1.0).series
    times = [t for t, _ in series.points]
    assert abs(times[-1] - end) < 2e-3 and times[0] >= start - 1e-3
    assert all(abs((b - a) - 1.0) < 1e-6 for a, b in itertools.pairwise(times))
    assert [round(v, 3) for _, v in series.points] == [round(t, 3) for t in times]


def test_training_stall_sees_the_restart_gap(scenario: Scenario) -> None:
    # The scenario aims at a 3.0 s gap between A's last and B's first step; a loaded
    # machine can stretch it (B's discovery and first scrape come first), so the
    # measured stall is held to the gap that actually happened.
    gap = scenario.gap
    assert gap >= 2.9
    result = slo_range(scenario, "training-stall")
    assert len(result.series) == 1
    stall = max(v for _, v in result.series[0].points)
    window = scenario.steps_b[-1] - scenario.steps_a[0]
    # 1 s scrapes and a 1 s step: the gap is seen to about a second either way.
    assert abs(stall - gap) <= 1.5, (stall, gap)
    assert stall >= 2.0 and (stall <= 6.0 or gap > 4.5), (stall, gap)
    assert stall < window - 2
    # While pod A was stepping, the stall stayed near the scrape interval.
    during_a = [v for t, v in result.series[0].points if t <= scenario.steps_a[-1]]
    assert during_a and max(during_a) <= 2.0
    check = evaluate_slo(STANDARD_SLOS["training-stall"], result)
    assert check.verdict == "pass" and check.name == "slo:training-stall"


def test_training_stall_fails_a_tight_threshold(scenario: Scenario) -> None:
    from dataclasses import replace

    tight = replace(STANDARD_SLOS["training-stall"], threshold=1.5)
    check = evaluate_slo(tight, slo_range(scenario, "training-stall"))
    assert check.verdict == "fail"
    assert any("violated" in line for line in check.evidence)


def test_checkpoint_save_p95_lies_within_the_observed_buckets(scenario: Scenario) -> None:
    result = slo_range(scenario, "checkpoint-save-p95")
    p95 = result.series[0].points[-1][1]
    # Six saves, the largest 1.2 s (bucket 1.0-2.5): the 95th percentile falls in that bucket.
    assert 1.0 <= p95 <= 2.5, p95
    check = evaluate_slo(STANDARD_SLOS["checkpoint-save-p95"], result)
    assert check.verdict == ("pass" if p95 <= 2.0 else "fail")


def test_daily_run_duration_is_read(scenario: Scenario) -> None:
    result = slo_range(scenario, "daily-run-duration")
    assert result.series[0].points[-1][1] == DAILY_DURATION
    assert evaluate_slo(STANDARD_SLOS["daily-run-duration"], result).verdict == "pass"


def test_daily_run_duration_is_unknown_before_any_daily_run_finished(scenario: Scenario) -> None:
    spec = STANDARD_SLOS["daily-run-duration"]
    start, end = scenario.started, scenario.steps_a[-1]  # the gauge exists, but reads 0 all along
    promql = render(spec, run_id=RUN_ID, kind="daily", start=start, end=end)
    zeros = query_range(url=scenario.url, promql=promql.removesuffix(" > 0"), start=start, end=end)
    assert zeros.series and {v for s in zeros.series for _, v in s.points} == {0.0}
    check = evaluate_slo(spec, query_range(url=scenario.url, promql=promql, start=start, end=end))
    assert check.verdict == "unknown"


def test_s3_error_rate_counts_both_pods(scenario: Scenario) -> None:
    result = slo_range(scenario, "s3-error-rate")
    rate = result.series[0].points[-1][1]
    expected = (RETRIES_A + RETRIES_B) / (scenario.ended - scenario.started)
    assert expected * 0.6 <= rate <= expected * 1.4, (rate, expected)
    assert evaluate_slo(STANDARD_SLOS["s3-error-rate"], result).verdict == "pass"


def test_checkpoint_failures_zero_passes(scenario: Scenario) -> None:
    result = slo_range(scenario, "checkpoint-failures")
    assert result.series[0].points[-1][1] == 0.0
    assert evaluate_slo(STANDARD_SLOS["checkpoint-failures"], result).verdict == "pass"


def test_query_for_a_missing_metric_is_unknown(scenario: Scenario) -> None:
    result = query_range(url=scenario.url, promql="no_such_metric", start=scenario.started, end=scenario.ended)
    assert result.series == ()
    assert evaluate_slo(STANDARD_SLOS["daily-run-duration"], result).verdict == "unknown"


def test_bad_promql_is_a_service_error_quoting_prometheus(scenario: Scenario) -> None:
    with pytest.raises(ServiceError) as err:
        query_range(url=scenario.url, promql="sum(rate(x[1m]", start=scenario.started, end=scenario.ended)
    message = str(err.value)
    assert "parse error" in message and "sum(rate(x[1m]" in message and "fix the PromQL" in message
    assert "\n" not in message


def test_unreachable_prometheus_is_a_service_error() -> None:
    url = f"http://127.0.0.1:{lifecycle.free_port()}"
    began = time.monotonic()
    with pytest.raises(ServiceError) as err:
        query_range(url=url, promql="up", start=time.time() - 10, end=time.time())
    assert str(err.value) == (
        f"Prometheus at {url} is unreachable (connection refused); "
        "start it (the embedded cluster starts one) or fix the URL"
    )
    assert time.monotonic() - began < 5
    with pytest.raises(ServiceError, match="unreachable"):
        query_instant(url=url, promql="up")
