"""The night's reports: ``report.html`` for a person, ``junit.xml`` for CI.

Both are written from what the night recorded alone: its :class:`NightSummary` and each run's
history. ``summary.json`` is written elsewhere (the trend across nights reads it).

The page is self-contained: its plots are PNGs embedded as base64, every text from a history
or a summary is escaped (evidence quotes pipeline output, which may hold anything).
"""

from __future__ import annotations

import base64
import html
import io
import statistics
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from harness.gameday.figures import run_figures
from harness.gameday.model import BADPUT_CLASSES, NightFigures, NightSummary, RunVerdict
from harness.history.clock import HarnessClock
from harness.history.events import Event, FaultHealed, FaultInjected, TrainStep, of_type
from harness.report.summary import iso

__all__ = [
    "RunHistory",
    "badput_png",
    "mttr_png",
    "night_recoveries",
    "night_timeline_png",
    "write_night_html",
    "write_night_junit",
    "write_night_reports",
]

_NOT_RUN = ("interrupted", "not started")
"""Run statuses under which a check that could not decide is skipped rather than failed."""

_STATUS_COLORS = {"passed": "#1a7f37", "failed": "#cf222e", "interrupted": "#9a6700"}
_VERDICT_COLORS = {"pass": "#1a7f37", "fail": "#cf222e", "unknown": "#9a6700"}
_RUN_COLORS = {"completed": "#1a7f37", "failed": "#cf222e", "interrupted": "#9a6700", "not started": "#57606a"}
_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#1f2328}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #d0d7de;padding:4px 8px;
vertical-align:top;text-align:left;font-size:14px}.v{font-weight:bold;color:white;border-radius:4px;padding:1px 6px}
.status{font-size:1.1em;padding:2px 10px}code{font-size:13px}img{max-width:100%}
"""


@dataclass(frozen=True, kw_only=True)
class RunHistory:
    """One run of the night: its verdict and its whole history (as ``history.jsonl`` of its folder holds it)."""

    verdict: RunVerdict
    events: tuple[Event, ...]


# --- entry point ----------------------------------------------------------------


def write_night_reports(summary: NightSummary, runs: Sequence[RunHistory], night_dir: Path) -> None:
    """Write ``night_dir/report.html`` and ``night_dir/junit.xml`` (creating ``night_dir``).

    ``runs`` are the night's runs with their histories, in any order; the page lists them by index."""
    night_dir.mkdir(parents=True, exist_ok=True)
    write_night_html(summary, runs, night_dir / "report.html")
    write_night_junit(summary, night_dir / "junit.xml")


# --- figures ------------------------------------------------------------------------


def night_recoveries(runs: Sequence[RunHistory]) -> list[float]:
    """Seconds from each interruption of training to the next attempt's first training step, over all runs,
    as the night's MTTR figures count them (:func:`harness.gameday.figures.run_figures`)."""
    return [seconds for run in runs if run.verdict.run_id
            for seconds in run_figures(run.events, run_id=run.verdict.run_id,
                                       completed=run.verdict.status == "completed").recoveries]


# --- plots ---------------------------------------------------------------------------


def _png(fig: Figure) -> bytes:
    """Render ``fig`` as PNG bytes and free it (pyplot keeps every open figure otherwise)."""
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _note(ax: Axes, text: str) -> None:
    """A centred note on an otherwise empty plot."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=11, color="#57606a")
    ax.set_xticks([])
    ax.set_yticks([])


def _span(clock: HarnessClock, events: Sequence[Event]) -> tuple[float, float]:
    """The first and last time of ``events`` on the harness's clock; ``events`` must not be empty."""
    times = [clock.time(e) for e in events]
    return min(times), max(times)


def _night_start(runs: Sequence[RunHistory]) -> float:
    """The night's origin: its earliest event over all runs, each run's events on the harness's clock
    (so a pod whose clock runs ahead cannot move the origin)."""
    starts = [_span(HarnessClock(r.events), r.events)[0] for r in runs if r.events]
    return min(starts, default=0.0)


def _attempts(steps: Sequence[TrainStep]) -> Iterator[list[TrainStep]]:
    """The training steps grouped by container attempt, in order of first appearance."""
    groups: dict[tuple[str, int], list[TrainStep]] = {}
    for e in steps:
        groups.setdefault((e.pod, e.attempt), []).append(e)
    yield from groups.values()


def _draw_run(ax: Axes, run: RunHistory, t0: float, color: str, shade: str) -> None:
    """One run on the night's timeline: its band, its index, a line per training attempt.

    Artists carry a ``gid`` (``run <index>``, ``train <index> <pod>/<attempt>``) so that tests, and the
    SVG a person may save, can tell them apart."""
    events = run.events
    clock = HarnessClock(events)
    start, end = _span(clock, events)
    ax.axvspan(start - t0, end - t0, color=shade, alpha=0.6, lw=0, zorder=0, gid=f"run {run.verdict.index}")
    ax.text((start + end) / 2 - t0, 0.02, f"#{run.verdict.index}", transform=ax.get_xaxis_transform(),
            ha="center", va="bottom", fontsize=8, color="#24292f")
    steps = [e for e in of_type(list(events), TrainStep) if e.run_id == run.verdict.run_id]
    for attempt in _attempts(steps):
        ax.plot([clock.time(e) - t0 for e in attempt], [e.step for e in attempt], lw=1.4, color=color,
                gid=f"train {run.verdict.index} {attempt[0].pod}/{attempt[0].attempt}")


def _draw_faults(ax: Axes, run: RunHistory, t0: float, slot: int) -> int:
    """The run's faults: a red mark and name where each was injected, a green mark where it was healed,
    the time between shaded (``gid``: ``fault <id>``, ``heal <id>``, ``active <id>``). Returns the next
    label slot: labels of faults close in time are staggered so that overlapping faults stay readable."""
    events = list(run.events)
    clock = HarnessClock(events)
    healed = {e.fault_id: clock.time(e) for e in of_type(events, FaultHealed)}
    for fault in of_type(events, FaultInjected):
        at = clock.time(fault) - t0
        ax.axvline(at, color="#cf222e", lw=1.2, zorder=3, gid=f"fault {fault.fault_id}")
        heal = healed.get(fault.fault_id)
        name = fault.fault if heal is not None else f"{fault.fault} (not healed)"
        ax.text(at, 0.97 - 0.09 * (slot % 4), f" {name}", transform=ax.get_xaxis_transform(), ha="left",
                va="top", fontsize=7, color="#82071e", zorder=4)
        slot += 1
        if heal is not None:
            ax.axvline(heal - t0, color="#1a7f37", lw=1.2, ls="--", zorder=3, gid=f"heal {fault.fault_id}")
            ax.axvspan(at, heal - t0, color="#cf222e", alpha=0.15, lw=0, zorder=1, gid=f"active {fault.fault_id}")
    return slot


def night_timeline_png(runs: Sequence[RunHistory]) -> bytes:
    """A PNG of the whole night: x = seconds since the night's earliest event, y = training step.

    Each run is a shaded band over its time span labelled with its index; its training steps are one
    line per container attempt (all attempts of a run in one colour); faults are red marks with their
    names, heals green dashed marks, the time a fault was active shaded red. Pipeline events are placed
    on the harness's clock, as the faults are. An empty night gives a plot saying so."""
    fig, ax = plt.subplots(figsize=(12, 4.2), dpi=100)
    drawn = [r for r in sorted(runs, key=lambda r: r.verdict.index) if r.events]
    if not drawn:
        _note(ax, "no events: nothing ran this night")
        return _png(fig)
    t0 = _night_start(drawn)
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    slot = 0
    for i, run in enumerate(drawn):
        _draw_run(ax, run, t0, palette[i % len(palette)], "#eaeef2" if i % 2 == 0 else "#d0d7de")
        slot = _draw_faults(ax, run, t0, slot)
    span = max(_span(HarnessClock(r.events), r.events)[1] for r in drawn) - t0
    # Room right of the night for the names of its last faults (text does not widen the axes).
    ax.set_xlim(-0.02 * span - 0.5, 1.15 * span + 0.5)
    ax.set_xlabel("seconds since the night started")
    ax.set_ylabel("training step")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(handles=[Patch(color="#d0d7de", label="run (index at the bottom)"),
                       Line2D([], [], color="#57606a", label="training step (one line per attempt)"),
                       Line2D([], [], color="#cf222e", label="fault injected"),
                       Line2D([], [], color="#1a7f37", ls="--", label="fault healed"),
                       Patch(color="#cf222e", alpha=0.15, label="fault active")],
              fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=5, frameon=False)
    return _png(fig)


def _badput_rows(figures: NightFigures) -> list[tuple[str, float]]:
    """Productive time, then each badput class in ``BADPUT_CLASSES`` order, in seconds."""
    return [("productive", figures.productive_seconds)] + [
        (name.replace("_", " "), float(getattr(figures.badput, name))) for name in BADPUT_CLASSES]


def _share(seconds: float, figures: NightFigures) -> float:
    """``seconds`` as a percentage of the night's elapsed time (of the classes' sum when that is 0)."""
    whole = figures.elapsed_seconds or figures.productive_seconds + figures.badput.total()
    return 100.0 * seconds / whole if whole > 0 else 0.0


def badput_png(figures: NightFigures) -> bytes:
    """A PNG: horizontal bars of productive time and each badput class, labelled in seconds and as a
    percentage of the night's elapsed time."""
    rows = _badput_rows(figures)
    fig, ax = plt.subplots(figsize=(8, 3.4), dpi=100)
    names = [n for n, _ in rows]
    seconds = [s for _, s in rows]
    colors = ["#1a7f37"] + ["#cf222e"] * (len(rows) - 1)
    ax.barh(names, seconds, color=colors)
    ax.invert_yaxis()  # productive first, at the top
    right = max(seconds, default=0.0) or 1.0  # an all-zero night still gets an axis to label
    ax.set_xlim(0, right * 1.35)  # room for the labels beyond the longest bar
    for y, s in enumerate(seconds):
        ax.text(s + right * 0.01, y, f"{s:.1f} s ({_share(s, figures):.1f}%)", va="center", fontsize=8)
    ax.set_xlabel("seconds")
    ax.set_title(f"where the night's {figures.elapsed_seconds:.0f} s went", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def mttr_png(recoveries: Sequence[float]) -> bytes:
    """A PNG: the histogram of recovery times (seconds), the median marked; a note when there were none."""
    fig, ax = plt.subplots(figsize=(8, 3.2), dpi=100)
    if not recoveries:
        _note(ax, "no recoveries: no fault ended a training attempt that resumed")
        return _png(fig)
    values = sorted(recoveries)
    ax.hist(values, bins=min(20, max(1, len(values))), color="#0969da", edgecolor="white")
    median = statistics.median(values)
    ax.axvline(median, color="#24292f", ls="--", lw=1, label=f"median {median:.1f} s")
    ax.set_xlabel("seconds from fault to the first training step after it")
    ax.set_ylabel("recoveries")
    ax.set_title(f"time to recover ({len(values)} recoveries)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


# --- report.html ---------------------------------------------------------------------


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _badge(text: str, color: str, cls: str = "v") -> str:
    return f'<span class="{cls}" style="background:{color}">{_e(text)}</span>'


def _seconds(x: float | None) -> str:
    """Seconds with one decimal; "n/a" when there is no figure (no recoveries)."""
    return "n/a" if x is None else f"{x:.1f} s"


def _duration(seconds: float) -> str:
    """``3725`` -> ``3725 s (1h 02m 05s)``."""
    whole = round(seconds)
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    return f"{seconds:g} s ({h}h {m:02d}m {s:02d}s)"


def _folder_link(folder: str) -> str:
    """A link to a run's folder, relative to the night's (where the page is)."""
    href = folder.rstrip("/") + "/"
    return f'<a href="{_e(href)}"><code>{_e(href)}</code></a>'


def _file_href(path: str, night_dir: Path) -> str:
    """Where a link to ``path`` points from the page: relative when it lies in the night's folder,
    a ``file:`` URI when absolute elsewhere, else as written."""
    p = Path(path)
    if not p.is_absolute():
        return path
    try:
        return p.relative_to(night_dir.resolve()).as_posix()
    except ValueError:
        return p.as_uri()


def _rows(pairs: Sequence[tuple[str, str]]) -> str:
    """A two-column table; values are HTML already (escaped by the caller)."""
    body = "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in pairs)
    return f"<table>{body}</table>"


def _header(summary: NightSummary, night_dir: Path) -> str:
    status = summary.status.upper()
    color = _STATUS_COLORS.get(summary.status, "#57606a")
    href = _file_href(summary.schedule_file, night_dir)
    facts = _rows([
        ("seed", f"<code>{summary.seed}</code>"),
        ("schedule", f'<a href="{_e(href)}"><code>{_e(summary.schedule_file)}</code></a>'),
        ("game-day file", f"<code>{_e(summary.gameday_file)}</code>"),
        ("commit", f"<code>{_e(summary.commit)}</code>"),
        ("cluster", _e(summary.cluster)),
        ("pipeline", _e(summary.pipeline)),
        ("started (UTC)", _e(iso(summary.started_at))),
        ("ended (UTC)", _e(iso(summary.ended_at))),
        ("duration asked", _e(_duration(summary.duration_seconds))),
    ])
    return (
        f"<h1>Game day {_e(summary.night)}: {_badge(status, color, 'v status')}</h1>{facts}"
        f"<h2>Game-day score {summary.score:.1f} (minimum {summary.min_score:g}): {_e(status)}</h2>"
        f"<p>Score = <code>{_e(summary.score_formula)}</code> = {summary.score:.1f}</p>"
    )


def _figures_table(f: NightFigures) -> str:
    faults = [(f"faults: {kind}", str(n)) for kind, n in sorted(f.faults.items())] or [("faults", "none")]
    return "<h2>Figures</h2>" + _rows([
        ("runs completed", str(f.runs_completed)),
        ("runs failed", str(f.runs_failed)),
        *faults,
        ("MTTR p50", _seconds(f.mttr_p50)),
        ("MTTR p95", _seconds(f.mttr_p95)),
        ("MTTR max", _seconds(f.mttr_max)),
        ("unrecovered faults", str(f.unrecovered)),
        ("steps lost", str(f.steps_lost)),
        ("goodput", f"{100 * f.goodput:.1f}%"),
        ("elapsed", _e(_duration(f.elapsed_seconds))),
    ])


def _plots(summary: NightSummary, runs: Sequence[RunHistory]) -> str:
    recoveries = night_recoveries(runs)
    mttr = (_img(mttr_png(recoveries), "MTTR distribution") if recoveries
            else "<p>No recoveries: no fault ended a training attempt that resumed.</p>")
    return (
        "<h2>Timeline of the night</h2>" + _img(night_timeline_png(runs), "timeline of the night")
        + "<h2>Where the time went</h2>" + _img(badput_png(summary.figures), "badput breakdown")
        + "<h2>Time to recover</h2>" + mttr
    )


def _failed_checks(verdicts: Sequence[RunVerdict]) -> str:
    """Every check of every run whose verdict is not ``pass``, with its evidence and its run's folder."""
    rows = [
        f"<tr><td>{v.index}</td><td>{_folder_link(v.folder)}</td><td>{_e(check)}</td>"
        f"<td>{_badge(verdict, _VERDICT_COLORS.get(verdict, '#57606a'))}</td>"
        f"<td>{'<br>'.join(_e(line) for line in evidence)}</td></tr>"
        for v in verdicts for check, verdict, evidence in v.checks if verdict != "pass"
    ]
    if not rows:
        return "<h2>Failed checks</h2><p>None: every check of every run passed.</p>"
    return ("<h2>Failed checks</h2><table><tr><th>run</th><th>folder</th><th>check</th><th>verdict</th>"
            f"<th>evidence</th></tr>{''.join(rows)}</table>")


def _runs_table(verdicts: Sequence[RunVerdict]) -> str:
    rows = "".join(
        f"<tr><td>{v.index}</td><td><code>{_e(v.run_id)}</code></td><td>{_e(v.date)}</td>"
        f"<td>{_badge(v.status, _RUN_COLORS.get(v.status, '#57606a'))}</td><td>{v.score:.1f}</td>"
        f"<td>{_folder_link(v.folder)}</td></tr>"
        for v in verdicts
    )
    return ("<h2>Runs</h2><table><tr><th>#</th><th>run id</th><th>date</th><th>status</th><th>score</th>"
            f"<th>folder</th></tr>{rows}</table>")


def write_night_html(summary: NightSummary, runs: Sequence[RunHistory], path: Path) -> None:
    """Write the night's self-contained ``report.html`` to ``path`` (links are relative to its folder).

    The runs listed are ``summary.runs``; ``runs`` give the histories the plots are drawn from."""
    verdicts = sorted(summary.runs, key=lambda v: v.index)
    body = (_header(summary, path.parent) + _figures_table(summary.figures) + _plots(summary, runs)
            + _failed_checks(verdicts) + _runs_table(verdicts))
    path.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>Game day {_e(summary.night)}: "
        f"{_e(summary.status.upper())}</title><style>{_STYLE}</style></head><body>{body}</body></html>",
        encoding="utf-8",
    )


# --- junit.xml -------------------------------------------------------------------------


def _check_case(suite: ET.Element, run: RunVerdict, check: str, verdict: str, evidence: tuple[str, ...]) -> str:
    """Add one check's test case; returns how it counts: ``pass``, ``failure`` or ``skipped``.

    A check that could not decide is skipped when its run never finished (interrupted, not started):
    there was nothing to decide on. Otherwise it fails: an unknown is never a pass."""
    case = ET.SubElement(suite, "testcase", classname=run.folder, name=check)
    text = "\n".join(evidence)
    first = evidence[0] if evidence else ""
    if verdict == "pass":
        ET.SubElement(case, "system-out").text = text
        return "pass"
    if verdict == "fail":
        ET.SubElement(case, "failure", message=f"fail: {first}").text = text
        return "failure"
    if run.status in _NOT_RUN:
        ET.SubElement(case, "skipped", message=f"{verdict}: the run was {run.status}").text = text
        return "skipped"
    ET.SubElement(case, "failure", message=f"{verdict}: the check could not decide").text = text
    return "failure"


def _run_case(suite: ET.Element, run: RunVerdict) -> str:
    """Add the run's own test case, named ``run``: it fails when the run failed and is skipped when the
    run was interrupted or never started (it neither passed nor failed). Returns how it counts."""
    case = ET.SubElement(suite, "testcase", classname=run.folder, name="run")
    if run.status == "failed":
        ET.SubElement(case, "failure", message=f"run {run.run_id} failed (score {run.score:.1f})")
        return "failure"
    if run.status in _NOT_RUN:
        ET.SubElement(case, "skipped", message=f"run {run.run_id} was {run.status}")
        return "skipped"
    return "pass"


def write_night_junit(summary: NightSummary, path: Path) -> None:
    """Write ``junit.xml``: one ``<testsuite name="gameday <night>">`` holding, per run (by index), a test
    case ``run`` and one per check, classed by the run's folder. ``fail`` is a failure; ``unknown`` is
    skipped when the run was interrupted or not started, else a failure."""
    root = ET.Element("testsuites", name=f"gameday {summary.night}")
    suite = ET.SubElement(root, "testsuite", name=f"gameday {summary.night}",
                          timestamp=iso(summary.started_at) or "",
                          time=f"{max(0.0, summary.ended_at - summary.started_at):.3f}")
    counts = {"pass": 0, "failure": 0, "skipped": 0}
    for run in sorted(summary.runs, key=lambda v: v.index):
        counts[_run_case(suite, run)] += 1
        for check, verdict, evidence in run.checks:
            counts[_check_case(suite, run, check, verdict, evidence)] += 1
    for element in (root, suite):
        element.set("tests", str(sum(counts.values())))
        element.set("failures", str(counts["failure"]))
        element.set("errors", "0")
        element.set("skipped", str(counts["skipped"]))
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
