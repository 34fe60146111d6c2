"""SLO checks: a PromQL query over a time window, reduced to one number, held to a threshold.

An experiment declares its SLOs in ``extensions.harness.slos``; each item is a
custom SLO or a standard one by name, with its default threshold overridable::

    extensions:
      harness:
        slos:
          - use: training-stall            # a standard SLO (see STANDARD_SLOS)
            threshold: 10                  # optional: op, window may be overridden too
          - name: restore-p99
            promql: histogram_quantile(0.99, sum by (le) (increase(
              pipeline_checkpoint_restore_seconds_bucket{run_id="{run_id}"}[{range}])))
            threshold: 5
            op: "<="
            reduce: last                   # max (default) | min | last
            window: experiment             # experiment (default) | training
            description: p99 checkpoint restore latency over the experiment, seconds

Placeholders in ``promql``, filled by :func:`render`: ``{run_id}`` and ``{kind}``
of the main run (escaped for use inside a double-quoted PromQL string) and
``{range}``, the window's length as a PromQL duration rounded up to whole
seconds (``93s``). Other ``{...}`` text is PromQL's own (label matchers).

The caller (not this module: checks never touch the live cluster) picks the
window named by ``window`` -- ``experiment``: the whole experiment;
``training``: from the first to the last training step of the main run --
runs the range query at a 1 s step, and hands the result to :func:`evaluate_slo`.

How the standard queries are built, and why:

- A window-wide aggregate (``increase``/``rate``/``max_over_time`` over
  ``[{range}]``) evaluated at the window's end covers exactly the window;
  those SLOs use ``reduce: last`` (the range query's grid is anchored at its
  end). Earlier points look back before the window and are ignored.
- Pods are short-lived processes, each its own target with its own ``pod``
  label: a restarted pod is a new series whose counters start again at 0.
  ``increase``/``rate`` per series, then ``sum`` across pods, counts every pod
  (and handles counter resets within one series).
- When a pod exits its series go stale, so an instant selector returns nothing
  during a restart gap. A range selector (``x[{range}]``) skips staleness
  markers and still sees the dead pod's last samples: that is how the stall
  query carries the last-step timestamp across the gap.

Resolution: 1 s scrapes and a 1 s step make every time-based figure good to
about +-1-2 s; observations a pod made before its first scrape are not seen by
``increase`` (its first sample is the baseline). Windows longer than about 3 h
at a 1 s step exceed Prometheus's 11,000 points per series: raise the step.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal, get_args

from harness.checks.verdict import CheckResult, Verdict
from harness.errors import ExperimentError
from harness.evidence.metric_names import METRIC_ROLES, MetricNames
from harness.evidence.prometheus import RangeResult, Series

__all__ = [
    "Op",
    "Reduce",
    "Window",
    "SloSpec",
    "STANDARD_SLOS",
    "PLACEHOLDERS",
    "parse_slos",
    "render",
    "evaluate_slo",
    "check_name",
]

Op = Literal["<=", ">=", "<", ">"]
Reduce = Literal["max", "min", "last"]
Window = Literal["experiment", "training"]

_OPS: tuple[str, ...] = get_args(Op)
_REDUCES: tuple[str, ...] = get_args(Reduce)
_WINDOWS: tuple[str, ...] = get_args(Window)

PLACEHOLDERS: tuple[str, ...] = ("{run_id}", "{kind}", "{range}")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True, kw_only=True)
class SloSpec:
    """One SLO: ``reduce(promql over the window) <op> threshold`` must hold."""

    name: str
    promql: str
    threshold: float
    op: Op
    reduce: Reduce = "max"
    window: Window = "experiment"
    description: str = ""
    weight: float = 1.0  # the check's weight in the experiment score


def check_name(spec: SloSpec) -> str:
    """The check's name in results and reports: ``slo:<name>``."""
    return f"slo:{spec.name}"


# Written with the probe library's metric names; standard_slos() renames them to a workload's.
STANDARD_SLOS: Mapping[str, SloSpec] = MappingProxyType(
    {
        s.name: s
        for s in (
            SloSpec(
                name="training-stall",
                # At each instant t: t minus the newest last-step timestamp any pod of the
                # run reported within the lookback. max_over_time over a range selector
                # keeps a dead pod's last sample through the restart gap (staleness markers
                # are skipped), so the value grows through the gap instead of vanishing.
                # Lookback = the window, so no gap inside it is ever too long to see.
                # "> 0" drops instants where only a not-yet-stepped pod exists (the gauge
                # reads 0 until the first step), which would otherwise read as decades.
                promql=(
                    "time() - (max(max_over_time("
                    'pipeline_last_step_timestamp_seconds{run_id="{run_id}"}[{range}])) > 0)'
                ),
                threshold=15.0,
                op="<=",
                reduce="max",
                window="training",
                description=(
                    "longest time the main run went without a new training step during training, "
                    "seconds, restart gaps included (checkpoints every ~2 s, restarts take ~3-5 s "
                    "on the embedded cluster, so 15 s allows a slow restart and flags a lost one)"
                ),
            ),
            SloSpec(
                name="checkpoint-save-p95",
                # Bucket counts gained over the window, per pod (so counter resets of
                # restarted pods are handled), summed across pods, then the 95th percentile,
                # interpolated within its bucket. NaN (no save in the window) -> unknown.
                promql=(
                    "histogram_quantile(0.95, sum by (le) (increase("
                    'pipeline_checkpoint_save_seconds_bucket{run_id="{run_id}"}[{range}])))'
                ),
                threshold=2.0,
                op="<=",
                reduce="last",
                window="experiment",
                description=(
                    "95th percentile checkpoint save latency (snapshot + upload + manifest) over the "
                    "experiment, seconds, from the save histogram (bucket-resolution; 2 s keeps a save "
                    "shorter than the ~2 s checkpoint interval)"
                ),
            ),
            SloSpec(
                name="daily-run-duration",
                # The gauge is set by the run's last step and held ~1.5 s, so 1 s scrapes
                # catch it; max_over_time over the window keeps it after that pod exits.
                # Every pod exports the gauge at 0 until then: "> 0" turns "no daily run
                # finished in the window" into no data (unknown), not a passing 0.
                promql='max(max_over_time(pipeline_run_duration_seconds{kind="daily"}[{range}])) > 0',
                threshold=120.0,
                op="<=",
                reduce="last",
                window="experiment",
                description=(
                    "longest whole-pipeline duration of any daily run that finished in the experiment, "
                    "seconds (120 s is several times an idle reference run on the embedded cluster; "
                    "no daily run finished in the window gives unknown)"
                ),
            ),
            SloSpec(
                name="s3-error-rate",
                # rate() per pod series handles counter resets and pods that start or end
                # inside the window; summing over pods gives the run's retries per second
                # averaged over the whole window.
                promql='sum(rate(pipeline_s3_retries_total{run_id="{run_id}"}[{range}]))',
                threshold=1.0,
                op="<=",
                reduce="last",
                window="experiment",
                description=(
                    "S3 request retries the main run's pods made per second, averaged over the "
                    "experiment (a few retries under injected 503s are expected; more than one a "
                    "second on average means the store or the proxy is failing the run)"
                ),
            ),
            SloSpec(
                name="checkpoint-failures",
                promql='sum(increase(pipeline_checkpoint_failures_total{run_id="{run_id}"}[{range}]))',
                threshold=0.0,
                op="<=",
                reduce="last",
                window="experiment",
                description=(
                    "checkpoints of the main run that could not be saved or restored during the "
                    "experiment (none allowed)"
                ),
            ),
        )
    }
)



def standard_slos(names: MetricNames) -> Mapping[str, SloSpec]:
    """The standard SLOs over the metric names a workload declares."""
    defaults = MetricNames()
    renames = {getattr(defaults, role): getattr(names, role) for role in METRIC_ROLES
               if getattr(defaults, role) != getattr(names, role)}
    if not renames:
        return STANDARD_SLOS
    # One pass, longest name first: a new name that contains another default name is never renamed again.
    # A name is matched as a prefix (histograms are queried as ``<name>_bucket``).
    pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in sorted(renames, key=len, reverse=True)) + ")")

    def renamed(promql: str) -> str:
        return pattern.sub(lambda m: renames[m.group(1)], promql)

    return MappingProxyType({n: replace(s, promql=renamed(s.promql)) for n, s in STANDARD_SLOS.items()})


# --------------------------------------------------------------------------- parsing

_CUSTOM_KEYS = frozenset({"weight", "name", "promql", "threshold", "op", "reduce", "window", "description"})
_USE_KEYS = frozenset({"weight", "use", "threshold", "op", "window"})


def parse_slos(raw: object, *, source: str, metrics: MetricNames | None = None) -> tuple[SloSpec, ...]:
    """Validate the ``extensions.harness.slos`` list of experiment ``source``; standard SLOs read
    ``metrics`` (the workload's declared names; default: the probe library's).

    ``None`` (no SLOs declared) gives ``()``. Any problem raises ExperimentError
    naming ``source``, the item and how to fix it, on one line.
    """
    where = "extensions.harness.slos"
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ExperimentError(
            f"{source}: {where} must be a list of SLOs ({{use: <standard>}} or {{name, promql, threshold, op}}), "
            f"got {type(raw).__name__}"
        )
    standards = standard_slos(metrics or MetricNames())
    specs: list[SloSpec] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        spec = _parse_item(item, source=source, at=f"{where}[{index}]", standards=standards)
        if spec.name in seen:
            raise ExperimentError(
                f"{source}: {where}[{index}]: SLO {spec.name!r} is declared twice; give the second one its own name"
            )
        seen.add(spec.name)
        specs.append(spec)
    return tuple(specs)


def _parse_item(item: object, *, source: str, at: str, standards: Mapping[str, SloSpec]) -> SloSpec:
    def bad(problem: str) -> ExperimentError:
        return ExperimentError(f"{source}: {at}{_label(item)}: {problem}")

    if not isinstance(item, Mapping):
        raise bad("an SLO must be a mapping ({use: <standard>} or {name, promql, threshold, op}), "
                  f"got {type(item).__name__}")
    keys = set(map(str, item))
    if "use" in item:
        extra = sorted(keys - _USE_KEYS)
        if extra:
            raise bad(f"unexpected key(s) {', '.join(extra)} beside 'use'; allowed: {', '.join(sorted(_USE_KEYS))}")
        use = item["use"]
        if not isinstance(use, str) or use not in standards:
            raise bad(f"unknown standard SLO {use!r}; known: {', '.join(sorted(standards))}")
        base = standards[use]
        return replace(
            base,
            threshold=_threshold(item, bad, default=base.threshold),
            op=_choice(item, "op", _OPS, bad, default=base.op),
            window=_choice(item, "window", _WINDOWS, bad, default=base.window),
            weight=_weight(item, bad),
        )
    extra = sorted(keys - _CUSTOM_KEYS)
    if extra:
        raise bad(
            f"unexpected key(s) {', '.join(extra)}; an SLO has {', '.join(sorted(_CUSTOM_KEYS))}, "
            "or 'use' for a standard one"
        )
    missing = [k for k in ("name", "promql", "threshold", "op") if k not in item]
    if missing:
        raise bad(f"missing {', '.join(missing)}; a custom SLO needs name, promql, threshold and op")
    name = item["name"]
    if not isinstance(name, str) or not _NAME.match(name):
        raise bad(f"name must be letters, digits, '.', '_' or '-', got {name!r}")
    if name in STANDARD_SLOS:
        raise bad(f"{name!r} is a standard SLO; write {{use: {name}}} to use it, or pick another name")
    promql = item["promql"]
    if not isinstance(promql, str) or not promql.strip():
        raise bad("promql must be a non-empty PromQL string")
    unknown = sorted({m.group(0) for m in _PLACEHOLDER.finditer(promql)} - set(PLACEHOLDERS))
    if unknown:
        raise bad(f"promql has unknown placeholder(s) {', '.join(unknown)}; known: {', '.join(PLACEHOLDERS)}")
    description = item.get("description", "")
    if not isinstance(description, str):
        raise bad(f"description must be a string, got {type(description).__name__}")
    return SloSpec(
        name=name,
        promql=promql.strip(),
        threshold=_threshold(item, bad, default=None),
        op=_choice(item, "op", _OPS, bad, default=None),
        reduce=_choice(item, "reduce", _REDUCES, bad, default="max"),
        window=_choice(item, "window", _WINDOWS, bad, default="experiment"),
        description=" ".join(description.split()),
        weight=_weight(item, bad),
    )


def _label(item: object) -> str:
    if isinstance(item, Mapping):
        for key in ("use", "name"):
            if isinstance(item.get(key), str):
                return f" ({key}: {' '.join(str(item[key]).split())})"
    return ""


_Bad = Callable[[str], ExperimentError]


def _threshold(item: Mapping[object, object], bad: _Bad, *, default: float | None) -> float:
    if "threshold" not in item and default is None:
        raise bad("missing threshold; a custom SLO needs name, promql, threshold and op")
    value = item.get("threshold", default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise bad(f"threshold must be a finite number, got {value!r}")
    return float(value)


def _weight(item: Mapping[object, object], bad: _Bad) -> float:
    value = item.get("weight", 1.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise bad(f"weight must be a non-negative number, got {value!r}")
    return float(value)


def _choice(item: Mapping[object, object], key: str, allowed: tuple[str, ...], bad: _Bad, *,
            default: str | None) -> Any:
    value = item.get(key, default)
    if value not in allowed:
        raise bad(f"{key} must be one of {', '.join(repr(a) for a in allowed)}, got {value!r}")
    return value


# --------------------------------------------------------------------------- rendering


def render(spec: SloSpec, *, run_id: str, kind: str, start: float, end: float) -> str:
    """``spec.promql`` with ``{run_id}``, ``{kind}`` (escaped for a double-quoted
    PromQL string) and ``{range}`` (``end - start`` rounded up, at least ``1s``) filled in."""
    if end < start:
        raise ValueError(f"window end {end!r} is before its start {start!r}")
    return (
        spec.promql.replace("{run_id}", _escape(run_id))
        .replace("{kind}", _escape(kind))
        .replace("{range}", range_duration(start, end))
    )


def range_duration(start: float, end: float) -> str:
    """The window's length as a PromQL duration, whole seconds rounded up: ``93s``."""
    return f"{max(1, math.ceil(end - start - 1e-9))}s"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


# --------------------------------------------------------------------------- evaluation


def evaluate_slo(spec: SloSpec, result: RangeResult | None, *, error: str = "", weight: float = 1.0) -> CheckResult:
    """Judge one SLO from its range-query result (pure).

    ``unknown`` when the query was not run (``result`` None, ``error`` says why),
    returned no series, or no numeric points (NaN points, e.g. a quantile of an
    empty histogram, are not data). Otherwise the points of all series are reduced
    to one number (``last``: the value at the latest instant; if several series
    have a point there, the one worst for the SLO) and compared with the threshold.
    """
    name = check_name(spec)
    head = f"SLO {spec.name}: {spec.description}" if spec.description else f"SLO {spec.name}"
    if result is None:
        why = error.strip() or "no reason given"
        return _result(name, "unknown", (head, f"the query was not run: {' '.join(why.split())}"), weight)
    evidence = [head, f"query: {result.promql}", f"window: {_window(result)}"]
    if error.strip():
        evidence.append(f"note: {' '.join(error.split())}")
    if not result.series:
        evidence.append(
            "the query returned no series over the window: nothing was measured "
            "(check the metric name and labels, and that Prometheus scraped the pods)"
        )
        return _result(name, "unknown", evidence, weight)
    points = [(t, v, s) for s in result.series for t, v in s.points if not math.isnan(v)]
    total = result.point_count
    if not points:
        evidence.append(
            f"{len(result.series)} series but no numeric points ({total} NaN or none): nothing was measured "
            "in the window (for a quantile: no observations)"
        )
        return _result(name, "unknown", evidence, weight)
    t, value, series = _reduce(spec, points)
    holds = _compare(value, spec.op, spec.threshold)
    verdict: Verdict = "pass" if holds else "fail"
    at = f"at {_iso(t)} (+{t - result.start:.1f} s into the window)"
    where = f" in {series.selector()}" if len(result.series) > 1 else ""
    evidence.append(
        f"{spec.reduce} of {len(points)} points in {len(result.series)} series = {value:.6g}{where} {at}; "
        f"required {spec.op} {spec.threshold:g}: {'holds' if holds else 'violated'}"
    )
    if len(points) < total:
        evidence.append(f"{total - len(points)} NaN points ignored")
    return _result(name, verdict, evidence, weight)


def _result(name: str, verdict: Verdict, evidence: tuple[str, ...] | list[str], weight: float) -> CheckResult:
    return CheckResult(name=name, verdict=verdict, evidence=tuple(evidence), weight=weight)


def _reduce(spec: SloSpec, points: list[tuple[float, float, Series]]) -> tuple[float, float, Series]:
    # The value worst for the SLO wins ties: the largest under "<"/"<=", the smallest under ">"/">=".
    upper_bound = spec.op in ("<", "<=")
    if spec.reduce == "last":
        latest = max(t for t, _, _ in points)
        candidates = [p for p in points if p[0] == latest]
        return max(candidates, key=lambda p: p[1]) if upper_bound else min(candidates, key=lambda p: p[1])
    if spec.reduce == "max":
        return max(points, key=lambda p: p[1])
    return min(points, key=lambda p: p[1])


def _compare(value: float, op: str, threshold: float) -> bool:
    if op == "<=":
        return value <= threshold
    if op == ">=":
        return value >= threshold
    if op == "<":
        return value < threshold
    if op == ">":
        return value > threshold
    raise ValueError(f"unknown op {op!r}")


def _window(result: RangeResult) -> str:
    return f"{_iso(result.start)} to {_iso(result.end)} ({result.end - result.start:.1f} s)"


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"

