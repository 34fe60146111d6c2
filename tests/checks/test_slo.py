"""SLO specs, their parsing, rendering and evaluation on hand-built range results."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from harness.checks.slo import (
    STANDARD_SLOS,
    SloSpec,
    evaluate_slo,
    parse_slos,
    range_duration,
    render,
    standard_slos,
)
from harness.errors import ExperimentError
from harness.evidence.metric_names import METRIC_ROLES, MetricNames
from harness.evidence.prometheus import RangeResult, Series

T0 = 1_700_000_000.0
SRC = "experiments/pod-kill.yaml"


def spec(**kw: object) -> SloSpec:
    base = SloSpec(name="stall", promql="some_query", threshold=10.0, op="<=", description="how long")
    return replace(base, **kw)  # type: ignore[arg-type]


def series(values: list[float], *, pod: str = "p-0", start: float = T0) -> Series:
    return Series(labels=(("pod", pod),), points=tuple((start + i, v) for i, v in enumerate(values)))


def result(*s: Series, promql: str = "some_query{run_id=\"r1\"}") -> RangeResult:
    return RangeResult(promql=promql, start=T0, end=T0 + 60, series=tuple(s))


# --------------------------------------------------------------------------- evaluation


def test_pass_with_evidence_a_reader_can_check() -> None:
    r = evaluate_slo(spec(), result(series([1.0, 4.5, 2.0])), weight=2.0)
    assert r.name == "slo:stall" and r.verdict == "pass" and r.weight == 2.0
    assert r.evidence[0] == "SLO stall: how long"
    assert r.evidence[1] == 'query: some_query{run_id="r1"}'
    assert r.evidence[2] == "window: 2023-11-14T22:13:20.000Z to 2023-11-14T22:14:20.000Z (60.0 s)"
    assert r.evidence[3] == (
        "max of 3 points in 1 series = 4.5 at 2023-11-14T22:13:21.000Z (+1.0 s into the window); "
        "required <= 10: holds"
    )


def test_fail_names_the_series_and_instant() -> None:
    r = evaluate_slo(spec(), result(series([1.0, 2.0]), series([3.0, 12.0, 5.0], pod="p-1")))
    assert r.verdict == "fail"
    assert r.evidence[-1] == (
        'max of 5 points in 2 series = 12 in {pod="p-1"} at 2023-11-14T22:13:21.000Z (+1.0 s into the window); '
        "required <= 10: violated"
    )


@pytest.mark.parametrize(
    ("op", "value", "verdict"),
    [
        ("<=", 10.0, "pass"),
        ("<=", 10.5, "fail"),
        ("<", 10.0, "fail"),
        ("<", 9.9, "pass"),
        (">=", 10.0, "pass"),
        (">=", 9.9, "fail"),
        (">", 10.0, "fail"),
        (">", 10.1, "pass"),
    ],
)
def test_each_op(op: str, value: float, verdict: str) -> None:
    assert evaluate_slo(spec(op=op, reduce="last"), result(series([value]))).verdict == verdict


@pytest.mark.parametrize(("reduce", "expected"), [("max", "= 9 "), ("min", "= 1 "), ("last", "= 4 ")])
def test_reductions(reduce: str, expected: str) -> None:
    r = evaluate_slo(spec(reduce=reduce), result(series([3.0, 9.0, 1.0, 4.0])))
    assert expected in r.evidence[-1] and r.evidence[-1].startswith(f"{reduce} of 4 points")


def test_last_takes_the_latest_instant_and_the_worst_series_there() -> None:
    early = series([50.0], pod="p-0", start=T0)  # an old pod's series ended long ago
    late_ok, late_bad = series([1.0, 2.0], pod="p-1", start=T0 + 9), series([0.5, 11.0], pod="p-2", start=T0 + 9)
    assert evaluate_slo(spec(reduce="last"), result(early, late_ok)).verdict == "pass"
    assert evaluate_slo(spec(reduce="last"), result(early, late_ok, late_bad)).verdict == "fail"
    # Under a lower bound the worst is the smallest.
    assert evaluate_slo(spec(reduce="last", op=">=", threshold=1.0), result(late_ok, late_bad)).verdict == "pass"
    assert evaluate_slo(spec(reduce="last", op=">=", threshold=1.5), result(late_ok, late_bad)).verdict == "pass"
    assert evaluate_slo(spec(reduce="last", op=">=", threshold=2.5), result(late_ok, late_bad)).verdict == "fail"


def test_query_not_run_is_unknown_with_the_error() -> None:
    r = evaluate_slo(spec(), None, error="Prometheus at http://x is unreachable\n(connection refused)")
    assert r.verdict == "unknown" and r.name == "slo:stall"
    assert r.evidence[-1] == "the query was not run: Prometheus at http://x is unreachable (connection refused)"
    assert evaluate_slo(spec(), None).evidence[-1] == "the query was not run: no reason given"


def test_no_series_is_unknown_never_pass() -> None:
    r = evaluate_slo(spec(), result())
    assert r.verdict == "unknown"
    assert r.evidence[-1].startswith("the query returned no series over the window: nothing was measured")


def test_series_without_points_or_only_nan_is_unknown() -> None:
    assert evaluate_slo(spec(), result(Series(labels=(), points=()))).verdict == "unknown"
    nan = evaluate_slo(spec(), result(series([math.nan, math.nan])))
    assert nan.verdict == "unknown"
    assert nan.evidence[-1] == (
        "1 series but no numeric points (2 NaN or none): nothing was measured in the window "
        "(for a quantile: no observations)"
    )


def test_nan_points_are_skipped_and_counted() -> None:
    r = evaluate_slo(spec(), result(series([math.nan, 3.0])))
    assert r.verdict == "pass" and r.evidence[-1] == "1 NaN points ignored"


def test_infinite_value_fails_an_upper_bound() -> None:
    # histogram_quantile answers +Inf when the quantile lies in the +Inf bucket.
    assert evaluate_slo(spec(reduce="last"), result(series([math.inf]))).verdict == "fail"


# --------------------------------------------------------------------------- rendering


def test_render_fills_placeholders_and_escapes() -> None:
    s = spec(promql='rate(x{run_id="{run_id}",kind="{kind}"}[{range}]) and on() y{run_id="{run_id}"}')
    assert render(s, run_id="daily-1", kind="daily", start=T0, end=T0 + 92.2) == (
        'rate(x{run_id="daily-1",kind="daily"}[93s]) and on() y{run_id="daily-1"}'
    )
    rendered = render(s, run_id='a"b\\c', kind="k", start=T0, end=T0)
    assert rendered.startswith('rate(x{run_id="a\\"b\\\\c",kind="k"}[1s])')
    with pytest.raises(ValueError):
        render(s, run_id="r", kind="k", start=T0, end=T0 - 1)


def test_range_duration_rounds_up_to_whole_seconds() -> None:
    assert range_duration(T0, T0 + 93.0) == "93s"
    assert range_duration(T0, T0 + 93.01) == "94s"
    assert range_duration(T0, T0 + 0.2) == "1s"


def test_standard_slos_render_to_promql_without_placeholders() -> None:
    for name, s in STANDARD_SLOS.items():
        assert s.name == name and s.description
        text = render(s, run_id="r1", kind="daily", start=T0, end=T0 + 30)
        assert "{run_id}" not in text and "{kind}" not in text and "{range}" not in text
    stall = render(STANDARD_SLOS["training-stall"], run_id="r1", kind="daily", start=T0, end=T0 + 30)
    assert stall == 'time() - (max(max_over_time(pipeline_last_step_timestamp_seconds{run_id="r1"}[30s])) > 0)'
    assert STANDARD_SLOS["training-stall"].window == "training"
    assert STANDARD_SLOS["training-stall"].threshold == 15.0


def test_standard_slos_query_the_metric_names_the_workload_declares() -> None:
    names = MetricNames(last_step_timestamp="churn_last_step_ts", checkpoint_save_seconds="churn_ckpt_save",
                        checkpoint_failures="churn_ckpt_failures", run_duration="churn_run_seconds",
                        s3_retries="churn_s3_retries")
    slos = standard_slos(names)
    stall = render(slos["training-stall"], run_id="r1", kind="daily", start=T0, end=T0 + 30)
    assert stall == 'time() - (max(max_over_time(churn_last_step_ts{run_id="r1"}[30s])) > 0)'
    assert 'churn_ckpt_save_bucket{run_id="{run_id}"}' in slos["checkpoint-save-p95"].promql
    assert "churn_run_seconds{" in slos["daily-run-duration"].promql
    assert "churn_s3_retries{" in slos["s3-error-rate"].promql
    assert "churn_ckpt_failures{" in slos["checkpoint-failures"].promql
    defaults = MetricNames()
    for slo in slos.values():
        assert not any(getattr(defaults, role) in slo.promql for role in METRIC_ROLES), slo.promql
    (parsed,) = parse_slos([{"use": "s3-error-rate"}], source=SRC, metrics=names)
    assert parsed.promql == slos["s3-error-rate"].promql
    assert standard_slos(MetricNames()) == STANDARD_SLOS


def test_a_declared_name_that_contains_another_default_name_is_renamed_once() -> None:
    names = MetricNames(last_step_timestamp="pipeline_s3_retries_total_last_step", s3_retries="churn_retries")
    slos = standard_slos(names)
    assert "max_over_time(pipeline_s3_retries_total_last_step{run_id=" in slos["training-stall"].promql
    assert "rate(churn_retries{run_id=" in slos["s3-error-rate"].promql


# --------------------------------------------------------------------------- parsing


def test_parse_standard_and_custom() -> None:
    specs = parse_slos(
        [
            {"use": "training-stall"},
            {"use": "checkpoint-save-p95", "threshold": 1, "op": "<"},
            {
                "name": "restore-p99",
                "promql": " histogram_quantile(0.99, x{run_id=\"{run_id}\"}[{range}]) ",
                "threshold": 5,
                "op": "<=",
                "reduce": "last",
                "window": "training",
                "description": "restore\n latency",
            },
            {"name": "min-steps", "promql": "pipeline_train_step", "threshold": 10, "op": ">="},
        ],
        source=SRC,
    )
    assert specs[0] == STANDARD_SLOS["training-stall"]
    assert specs[1] == replace(STANDARD_SLOS["checkpoint-save-p95"], threshold=1.0, op="<")
    assert specs[2] == SloSpec(
        name="restore-p99",
        promql='histogram_quantile(0.99, x{run_id="{run_id}"}[{range}])',
        threshold=5.0,
        op="<=",
        reduce="last",
        window="training",
        description="restore latency",
    )
    assert (specs[3].reduce, specs[3].window, specs[3].description) == ("max", "experiment", "")
    assert parse_slos(None, source=SRC) == ()
    assert parse_slos([], source=SRC) == ()


def test_standard_window_can_be_overridden() -> None:
    (s,) = parse_slos([{"use": "training-stall", "window": "experiment"}], source=SRC)
    assert s.window == "experiment" and s.promql == STANDARD_SLOS["training-stall"].promql


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            [{"use": "no-such-slo"}],
            "experiments/pod-kill.yaml: extensions.harness.slos[0] (use: no-such-slo): unknown standard SLO "
            "'no-such-slo'; known: checkpoint-failures, checkpoint-save-p95, daily-run-duration, s3-error-rate, "
            "training-stall",
        ),
        (
            [{"use": "training-stall"}, {"name": "x", "promql": "up", "op": "<="}],
            "experiments/pod-kill.yaml: extensions.harness.slos[1] (name: x): missing threshold; "
            "a custom SLO needs name, promql, threshold and op",
        ),
        (
            [{"name": "x", "promql": "up", "threshold": 1, "op": "=="}],
            "experiments/pod-kill.yaml: extensions.harness.slos[0] (name: x): op must be one of "
            "'<=', '>=', '<', '>', got '=='",
        ),
        (
            [{"use": "training-stall", "op": "=<"}],
            "experiments/pod-kill.yaml: extensions.harness.slos[0] (use: training-stall): op must be one of "
            "'<=', '>=', '<', '>', got '=<'",
        ),
        (
            [{"use": "training-stall", "threshold": "15s"}],
            "experiments/pod-kill.yaml: extensions.harness.slos[0] (use: training-stall): threshold must be a "
            "finite number, got '15s'",
        ),
        (
            [{"use": "training-stall", "threshold": True}],
            "experiments/pod-kill.yaml: extensions.harness.slos[0] (use: training-stall): threshold must be a "
            "finite number, got True",
        ),
        (
            [{"name": "x", "promql": "up", "threshold": 1, "op": "<=", "reduce": "avg"}],
            "experiments/pod-kill.yaml: extensions.harness.slos[0] (name: x): reduce must be one of "
            "'max', 'min', 'last', got 'avg'",
        ),
        (
            [{"name": "x", "promql": "up", "threshold": 1, "op": "<=", "window": "run"}],
            "experiments/pod-kill.yaml: extensions.harness.slos[0] (name: x): window must be one of "
            "'experiment', 'training', got 'run'",
        ),
        (
            [{"name": "x", "promql": 'up{job="{job}"}', "threshold": 1, "op": "<="}],
            "experiments/pod-kill.yaml: extensions.harness.slos[0] (name: x): promql has unknown placeholder(s) "
            "{job}; known: {run_id}, {kind}, {range}",
        ),
        (
            [{"name": "x", "promql": "  ", "threshold": 1, "op": "<="}],
            "experiments/pod-kill.yaml: extensions.harness.slos[0] (name: x): promql must be a non-empty PromQL string",
        ),
        (
            [{"name": "a b", "promql": "up", "threshold": 1, "op": "<="}],
            "experiments/pod-kill.yaml: extensions.harness.slos[0] (name: a b): name must be letters, digits, "
            "'.', '_' or '-', got 'a b'",
        ),
        (
            [{"name": "training-stall", "promql": "up", "threshold": 1, "op": "<="}],
            "experiments/pod-kill.yaml: extensions.harness.slos[0] (name: training-stall): 'training-stall' is a "
            "standard SLO; write {use: training-stall} to use it, or pick another name",
        ),
        (
            [{"use": "training-stall", "promql": "up"}],
            "experiments/pod-kill.yaml: extensions.harness.slos[0] (use: training-stall): unexpected key(s) "
            "promql beside 'use'; allowed: op, threshold, use, weight, window",
        ),
        (
            [{"name": "x", "query": "up", "threshold": 1, "op": "<="}],
            "experiments/pod-kill.yaml: extensions.harness.slos[0] (name: x): unexpected key(s) query; an SLO has "
            "description, name, op, promql, reduce, threshold, weight, window, or 'use' for a standard one",
        ),
        (
            [{"use": "training-stall"}, {"use": "training-stall"}],
            "experiments/pod-kill.yaml: extensions.harness.slos[1]: SLO 'training-stall' is declared twice; "
            "give the second one its own name",
        ),
        (
            ["training-stall"],
            "experiments/pod-kill.yaml: extensions.harness.slos[0]: an SLO must be a mapping "
            "({use: <standard>} or {name, promql, threshold, op}), got str",
        ),
        (
            {"use": "training-stall"},
            "experiments/pod-kill.yaml: extensions.harness.slos must be a list of SLOs "
            "({use: <standard>} or {name, promql, threshold, op}), got dict",
        ),
    ],
)
def test_parse_errors_are_one_line_naming_experiment_and_item(raw: object, message: str) -> None:
    with pytest.raises(ExperimentError) as err:
        parse_slos(raw, source=SRC)
    assert str(err.value) == message
    assert "\n" not in str(err.value)
