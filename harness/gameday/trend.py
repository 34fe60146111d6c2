"""The trend across game-day nights: the latest night against the median of the ones before it.

The gate (:func:`judge_trend`) compares four figures of the latest night with the median of the up to
``TrendThresholds.nights`` complete nights (status passed or failed) before it: the score and goodput
must not drop, MTTR p95 and steps lost must not rise, by more than their thresholds. An incomplete
(interrupted) latest night never passes; incomplete earlier nights are left out of the baseline, since
their figures cover only part of a night.

:func:`write_trend_html` draws the nights as one self-contained page; :func:`trend_main` is what the
``mlchaos`` command runs.
"""

from __future__ import annotations

import base64
import html
import io
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot

import matplotlib.pyplot as plt

from harness.errors import HarnessError
from harness.gameday.model import NightSummary
from harness.gameday.results import open_results
from harness.report.summary import iso

__all__ = ["S3_TREND_PAGE", "TrendThresholds", "TrendVerdict", "judge_trend", "trend_main", "write_trend_html"]

COMPLETE = ("passed", "failed")
"""Night statuses whose figures cover a whole night: only these make a baseline, or pass."""

S3_TREND_PAGE = "reports/gamedays-trend.html"
"""Where :func:`trend_main` writes the page of an S3 store unless told otherwise."""

_EPS = 1e-9  # a figure exactly at its limit passes, whatever the float arithmetic made of the limit


@dataclass(frozen=True, kw_only=True)
class TrendThresholds:
    """How far the latest night may fall behind the median of the ``nights`` complete nights before it.

    ``score_drop``: points below the median; ``goodput_drop``: absolute (goodput is 0-1);
    ``mttr_p95_rise`` and ``steps_lost_rise``: relative to the median (0.5: 50 % above it). Steps lost
    also get ``steps_lost_slack``: a rise of no more than that many steps is never a regression (so
    0 -> 3 steps passes)."""

    nights: int = 7
    score_drop: float = 5.0
    goodput_drop: float = 0.05
    mttr_p95_rise: float = 0.5
    steps_lost_rise: float = 0.5
    steps_lost_slack: int = 20

    def __post_init__(self) -> None:
        if self.nights < 1:
            raise HarnessError(f"the trend needs at least 1 previous night as baseline, not {self.nights}")
        limits = {"score_drop": self.score_drop, "goodput_drop": self.goodput_drop,
                  "mttr_p95_rise": self.mttr_p95_rise, "steps_lost_rise": self.steps_lost_rise,
                  "steps_lost_slack": self.steps_lost_slack}
        negative = [f"{name}={value:g}" for name, value in limits.items() if value < 0]
        if negative:
            raise HarnessError(f"trend thresholds must not be negative: {', '.join(negative)}")


@dataclass(frozen=True, kw_only=True)
class TrendVerdict:
    """The gate's answer. ``lines``: the latest night's status, the baseline, then one line per figure
    (latest value, median of the previous nights, the limit, ok/REGRESSED). ``regressions``: what
    failed, by name: ``status`` (an incomplete latest night), ``score``, ``goodput``, ``mttr_p95``,
    ``steps_lost``; empty exactly when ``passed``."""

    passed: bool
    latest: str
    baseline_nights: tuple[str, ...]
    lines: tuple[str, ...]
    regressions: tuple[str, ...]


# --- the figures ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Figure:
    """One figure the gate compares: how to read it, how to show it, and its limit given the median."""

    name: str
    label: str
    value: Callable[[NightSummary], float | None]
    show: Callable[[float], str]
    higher_is_better: bool
    limit: Callable[[float, TrendThresholds], float]


_FIGURES = (
    _Figure("score", "score", lambda s: s.score, lambda v: f"{v:.1f}", True,
            lambda median, t: median - t.score_drop),
    _Figure("goodput", "goodput", lambda s: s.figures.goodput, lambda v: f"{v:.3f}", True,
            lambda median, t: median - t.goodput_drop),
    _Figure("mttr_p95", "MTTR p95 (s)", lambda s: s.figures.mttr_p95, lambda v: f"{v:.1f}s", False,
            lambda median, t: median * (1 + t.mttr_p95_rise)),
    _Figure("steps_lost", "steps lost", lambda s: s.figures.steps_lost, lambda v: f"{v:g}", False,
            lambda median, t: max(median * (1 + t.steps_lost_rise), median + t.steps_lost_slack)),
)


def _median(figure: _Figure, nights: Sequence[NightSummary]) -> float | None:
    """The median of ``figure`` over ``nights``, leaving out nights without it; None when none has it."""
    values = [v for v in (figure.value(s) for s in nights) if v is not None]
    return statistics.median(values) if values else None


def _regressed(figure: _Figure, value: float, limit: float) -> bool:
    return value < limit - _EPS if figure.higher_is_better else value > limit + _EPS


@dataclass(frozen=True)
class _Judged:
    line: str
    regressed: bool


def _judge_figure(figure: _Figure, latest: NightSummary, baseline: Sequence[NightSummary],
                  thresholds: TrendThresholds) -> _Judged:
    value = figure.value(latest)
    shown = "none" if value is None else figure.show(value)
    if not baseline:
        return _Judged(f"{figure.name}: latest {shown}; no baseline yet: ok", False)
    median = _median(figure, baseline)
    if value is None or median is None:
        # MTTR p95 is None when a night had no recoveries: nothing to compare, which is no regression.
        which = "the latest night" if value is None else "no baseline night"
        return _Judged(f"{figure.name}: latest {shown}, median "
                       f"{'none' if median is None else figure.show(median)}; not comparable "
                       f"({which} had recoveries to measure): ok", False)
    limit = figure.limit(median, thresholds)
    regressed = _regressed(figure, value, limit)
    side = "below" if figure.higher_is_better else "above"
    return _Judged(f"{figure.name}: latest {shown}, median of {len(baseline)} previous {figure.show(median)}, "
                   f"fails {side} {figure.show(limit)}: {'REGRESSED' if regressed else 'ok'}", regressed)


# --- the gate ----------------------------------------------------------------------------


def _ordered(summaries: Sequence[NightSummary]) -> list[NightSummary]:
    """Oldest first, as the stores give them; sorted again so the gate does not depend on it."""
    if not summaries:
        raise HarnessError("there are no game-day nights to judge; run `mlchaos gameday` first")
    return sorted(summaries, key=lambda s: (s.started_at, s.night))


def _baseline(ordered: Sequence[NightSummary], nights: int) -> tuple[list[NightSummary], int]:
    """The up to ``nights`` complete nights before the latest (oldest first), and how many incomplete
    nights were left out among them (all earlier incomplete nights when fewer than ``nights`` are complete)."""
    previous = ordered[:-1]
    complete = [i for i, s in enumerate(previous) if s.status in COMPLETE][-nights:]
    start = complete[0] if len(complete) == nights else 0
    return [previous[i] for i in complete], sum(s.status not in COMPLETE for s in previous[start:])


def _status_line(latest: NightSummary) -> _Judged:
    if latest.status in COMPLETE:
        return _Judged(f"status: latest night {latest.night} {latest.status}: ok", False)
    return _Judged(f"status: latest night {latest.night} is {latest.status}: "
                   "an incomplete night never passes: REGRESSED", True)


def _baseline_line(baseline: Sequence[NightSummary], skipped: int) -> str:
    left_out = f"; {skipped} incomplete night(s) left out" if skipped else ""
    if not baseline:
        return f"baseline: none yet (no earlier passed or failed night){left_out}"
    return (f"baseline: median of {len(baseline)} previous night(s), {baseline[0].night} to "
            f"{baseline[-1].night}{left_out}")


def judge_trend(summaries: Sequence[NightSummary], thresholds: TrendThresholds) -> TrendVerdict:
    """Judge the latest night (by ``started_at``) of ``summaries`` against the median of the up to
    ``thresholds.nights`` complete nights before it. HarnessError when ``summaries`` is empty."""
    ordered = _ordered(summaries)
    latest = ordered[-1]
    baseline, skipped = _baseline(ordered, thresholds.nights)
    judged = [("status", _status_line(latest))]
    judged += [(f.name, _judge_figure(f, latest, baseline, thresholds)) for f in _FIGURES]
    lines = [judged[0][1].line, _baseline_line(baseline, skipped)] + [j.line for _, j in judged[1:]]
    regressions = tuple(name for name, j in judged if j.regressed)
    return TrendVerdict(passed=not regressions, latest=latest.night,
                        baseline_nights=tuple(s.night for s in baseline), lines=tuple(lines),
                        regressions=regressions)


# --- the page -----------------------------------------------------------------------------

_STATUS_COLORS = {"passed": "#1a7f37", "failed": "#cf222e", "interrupted": "#9a6700"}
_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#1f2328}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #d0d7de;padding:4px 8px;
vertical-align:top;text-align:left;font-size:14px}.v{font-weight:bold;color:white;border-radius:4px;padding:1px 6px}
code{font-size:13px}img{max-width:49%}
"""
_MAX_TICKS = 16  # more night names than this under one plot overlap; label every k-th one


def _figure_png(figure: _Figure, ordered: Sequence[NightSummary], median: float | None) -> bytes:
    """A PNG of ``figure`` per night: complete nights as dots, incomplete ones as crosses, the latest
    ringed, the baseline median dashed."""
    xs = list(range(len(ordered)))
    ys = [math.nan if (v := figure.value(s)) is None else v for s in ordered]
    fig, ax = plt.subplots(figsize=(5.6, 3.2), dpi=100)
    ax.plot(xs, ys, color="#0969da", lw=1.2, marker="o", ms=4, zorder=2)
    incomplete = [x for x, s in zip(xs, ordered, strict=True) if s.status not in COMPLETE]
    if incomplete:
        ax.scatter(incomplete, [ys[x] for x in incomplete], marker="x", s=50, c="#9a6700", zorder=3,
                   label="incomplete night")
    ax.scatter([xs[-1]], [ys[-1]], s=140, facecolors="none", edgecolors="#cf222e", lw=2, zorder=4,
               label=f"latest ({ordered[-1].night})")
    if median is not None:
        ax.axhline(median, color="#57606a", ls="--", lw=1, label="baseline median")
    step = max(1, math.ceil(len(xs) / _MAX_TICKS))
    ticks = sorted({*xs[::-step]})
    ax.set_xticks(ticks, [ordered[x].night for x in ticks], rotation=35, ha="right", fontsize=7)
    ax.set_xlim(-0.5, len(xs) - 0.5)
    ax.set_title(figure.label, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)  # pyplot keeps every open figure otherwise
    return buf.getvalue()


def _cell(figure: _Figure, night: NightSummary) -> str:
    value = figure.value(night)
    return "\N{EN DASH}" if value is None else figure.show(value)


def _status(status: str) -> str:
    return f'<span class="v" style="background:{_STATUS_COLORS.get(status, "#57606a")}">{html.escape(status)}</span>'


def _row(night: NightSummary, latest: bool) -> str:
    e = html.escape
    cells = [
        f'<a href="{e(quote(night.night))}/report.html">{e(night.night)}</a>' + (" (latest)" if latest else ""),
        e(iso(night.started_at) or ""), f"<code>{e(night.commit)}</code>", str(night.seed), e(night.cluster),
        _status(night.status), *(e(_cell(f, night)) for f in _FIGURES),
    ]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _verdict_html(verdict: TrendVerdict) -> str:
    e = html.escape
    head = "passed" if verdict.passed else f"REGRESSED ({', '.join(verdict.regressions)})"
    color = _STATUS_COLORS["passed" if verdict.passed else "failed"]
    return (f'<h1>Game-day trend: <span class="v" style="background:{color}">{e(head)}</span></h1>'
            f"<p>Latest night <code>{e(verdict.latest)}</code>.</p>"
            "<ul>" + "".join(f"<li><code>{e(line)}</code></li>" for line in verdict.lines) + "</ul>")


def write_trend_html(summaries: Sequence[NightSummary], verdict: TrendVerdict, path: Path) -> None:
    """Write the trend page to ``path`` (its folder must exist): the verdict, one plot per figure and a
    table of the nights, each linking to ``<night>/report.html`` beside the page."""
    ordered = _ordered(summaries)
    baseline = [s for s in ordered if s.night in set(verdict.baseline_nights)]
    plots = [_figure_png(f, ordered, _median(f, baseline)) for f in _FIGURES]
    heads = ["night", "started", "commit", "seed", "cluster", "status", *(f.label for f in _FIGURES)]
    body = [
        _verdict_html(verdict),
        "".join(f'<img alt="{html.escape(f.label)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
                for f, png in zip(_FIGURES, plots, strict=True)),
        "<h2>Nights</h2><table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in heads) + "</tr>",
        *(_row(s, s is ordered[-1]) for s in reversed(ordered)),  # newest first: what a reader looks for
        "</table>",
    ]
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>Game-day trend "
        f"{html.escape(verdict.latest)}</title><style>{_STYLE}</style></head><body>{''.join(body)}</body></html>",
        encoding="utf-8",
    )


# --- the command ------------------------------------------------------------------------------


def trend_main(results: str, *, thresholds: TrendThresholds, out: Path | None, endpoint_url: str | None) -> int:
    """Judge the nights of the store ``results`` (a folder or ``s3://bucket/prefix``), write the page
    (``out``, else ``<results>/trend.html`` for a folder, ``S3_TREND_PAGE`` for S3), print the verdict
    lines and the page's path. 0 when the trend passed, 1 when it regressed; HarnessError when the
    store holds no nights or cannot be read."""
    summaries = open_results(results, endpoint_url=endpoint_url).summaries()
    if not summaries:
        raise HarnessError(f"no game-day nights in {results}; run `mlchaos gameday` first")
    verdict = judge_trend(summaries, thresholds)
    page = out if out is not None else _default_page(results)
    page.parent.mkdir(parents=True, exist_ok=True)
    write_trend_html(summaries, verdict, page)
    for line in verdict.lines:
        print(line)
    print(f"trend: {'passed' if verdict.passed else 'REGRESSED (' + ', '.join(verdict.regressions) + ')'}")
    print(f"trend page: {page}")
    return 0 if verdict.passed else 1


def _default_page(results: str) -> Path:
    return Path(S3_TREND_PAGE) if results.startswith("s3://") else Path(results) / "trend.html"
