"""``mlchaos gameday``: draw (or read) the night's schedule, run it on a cluster, judge it, report it, keep it.

The order matters: the schedule is written before the cluster starts (a night
that crashes can still be replayed), the reports are written whatever happened
(an interrupted night keeps what it learned, marked ``interrupted``), and the
night is copied to the results store last.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.cluster.options import ClusterOptions
from harness.environment import open_environment
from harness.errors import HarnessError
from harness.gameday.figures import night_figures, run_figures
from harness.gameday.generators import draw_schedule
from harness.gameday.model import NightSummary, RunFigures, RunVerdict, Schedule
from harness.gameday.night import Night, NightRun
from harness.gameday.plan_file import GameDayFile, load_gameday
from harness.gameday.report import RunHistory, write_night_reports
from harness.gameday.results import open_results
from harness.gameday.schedule_file import read_schedule, write_schedule
from harness.gameday.summary_file import write_summary
from harness.history.events import Event
from harness.history.store import load
from harness.score import suite_score
from harness.workload.declaration import WorkloadError, load_workload
from harness.workload.reference import reference_workload
from harness.workload.role import Workload
from harness.workload.settings import check_params

__all__ = ["GameDayOptions", "gameday_main", "parse_duration"]

LOCAL_RESULTS = Path("reports/gamedays")


@dataclass(frozen=True, kw_only=True)
class GameDayOptions:
    duration_seconds: float
    seed: int
    gameday_file: Path | None = None
    replay: Path | None = None
    pipeline: Path | None = None
    results: str = str(LOCAL_RESULTS)
    s3_endpoint_url: str | None = None  # for an s3:// results store
    min_score: float | None = None  # default: the game-day file's
    settings: tuple[tuple[str, str], ...] = ()  # pipeline settings over the game-day file's (--set)
    cluster: ClusterOptions = field(default_factory=ClusterOptions)


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``20m``, ``1h``, ``1h30m`` as seconds; ValueError names a malformed one."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0}
    raw = text.strip().lower()
    total, number = 0.0, ""
    for char in raw:
        if char.isdigit() or char == ".":
            number += char
        elif char in units and number:
            total, number = total + float(number) * units[char], ""
        else:
            raise ValueError(f"a duration is like 90s, 20m or 1h30m, got {text!r}")
    if number:
        total += float(number)
    if total <= 0:
        raise ValueError(f"a duration must be positive, got {text!r}")
    return total


def gameday_main(options: GameDayOptions, *, progress: Callable[[str], None] = print) -> int:
    """Run one game day; returns 0 when it passed, 1 when it scored below its minimum. Raises HarnessError
    on bad input before anything starts, and KeyboardInterrupt (after writing its reports) when interrupted."""
    workload: Workload = load_workload(options.pipeline) if options.pipeline else reference_workload()
    gameday = _with_settings(load_gameday(options.gameday_file, workload=workload), options.settings, workload)
    schedule = _schedule(options, gameday, workload)
    _refuse_unsafe(schedule, options.cluster)
    store = open_results(options.results, endpoint_url=options.s3_endpoint_url)
    kept = store.summaries()  # an unreachable store fails here, before anything starts
    tag = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    root = Path(options.results) if not options.results.startswith("s3://") else LOCAL_RESULTS
    night_dir = root / tag
    write_schedule(schedule, night_dir / "schedule.json")  # before anything can be injected
    progress(f"game day {tag}: seed {schedule.seed}, {len(schedule.runs)} run(s) drawn for "
             f"{schedule.duration_seconds:g}s, {sum(len(r.faults) for r in schedule.runs)} fault(s); "
             f"schedule: {night_dir / 'schedule.json'}; {len(kept)} earlier night(s) kept in {options.results}")
    started = time.time()
    night: Night | None = None
    interrupted = ""
    try:
        with open_environment(options=options.cluster, run=tag, kubeconfig_copy=night_dir / "kubeconfig",
                              progress=progress) as env:
            night = Night(schedule=schedule, gameday=gameday, workload=workload, env=env, night_dir=night_dir,
                          tag=tag, progress=progress)
            night.run(deadline=time.time() + schedule.duration_seconds)
    except KeyboardInterrupt as exc:
        interrupted = str(exc) or "interrupted (Ctrl-C or SIGTERM)"
    runs = night.runs if night is not None else []
    events = {run.folder: tuple(_events(night_dir / run.folder)) for run in runs}  # each history read once
    summary = _summarize(
        night=tag, schedule=schedule, gameday=gameday, options=options, workload=workload, runs=runs,
        events=events, started=started, interrupted=interrupted)
    histories = [RunHistory(verdict=v, events=events.get(v.folder, ())) for v in summary.runs]
    write_summary(summary, night_dir / "summary.json")
    write_night_reports(summary, histories, night_dir)
    where = store.save(night_dir)
    progress(f"game day {tag}: {summary.status.upper()}, score {summary.score:.1f} (minimum {summary.min_score:g}; "
             f"{summary.score_formula}); goodput {100 * summary.figures.goodput:.1f}%; "
             f"report: {night_dir / 'report.html'}; kept in {where}")
    if interrupted:
        raise KeyboardInterrupt(interrupted)
    return 0 if summary.status == "passed" else 1


def _with_settings(gameday: GameDayFile, settings: Sequence[tuple[str, str]], workload: Workload) -> GameDayFile:
    if not settings:
        return gameday
    try:
        values = check_params(workload, dict(settings), source="--set")
    except WorkloadError as exc:
        raise HarnessError(str(exc)) from None
    return replace(gameday, settings=gameday.settings.with_params(**values))


def _schedule(options: GameDayOptions, gameday: GameDayFile, workload: Workload) -> Schedule:
    if options.replay is None:
        return draw_schedule(gameday.plan, seed=options.seed, duration_seconds=options.duration_seconds)
    schedule = read_schedule(options.replay)
    if schedule.train_step_name != workload.train_step or schedule.train_steps != gameday.plan.train_steps:
        raise HarnessError(
            f"{options.replay}: drawn for a pipeline training {schedule.train_steps} steps in step "
            f"{schedule.train_step_name!r}, but this one trains {gameday.plan.train_steps} in "
            f"{workload.train_step!r}; replay it with the same --pipeline and game-day file")
    unknown = sorted({f.at.step for r in schedule.runs for f in r.faults} - {s.name for s in workload.steps})
    if unknown:
        raise HarnessError(f"{options.replay}: aims at step(s) {', '.join(unknown)}, which the pipeline does not "
                           "have; replay it with the pipeline it was drawn for")
    return schedule


def _refuse_unsafe(schedule: Schedule, cluster: ClusterOptions) -> None:
    # A spot preemption taints, cordons and evicts as a drain does (it stops no node outside the embedded cluster).
    node_kinds = sorted({f.kind for r in schedule.runs for f in r.faults} & {"node-drain", "spot-preemption"})
    if node_kinds and cluster.kind == "existing" and not cluster.allow_node_faults:
        raise HarnessError(f"the schedule drains or preempts nodes, and node faults are not allowed on context "
                           f"{cluster.context}; pass --allow-node-faults (with --node-selector) or use a game-day "
                           f"file without {' or '.join(node_kinds)}")


def _events(folder: Path) -> list[Event]:
    path = folder / "history.jsonl"
    return load(path) if path.exists() else []


def _summarize(
    *, night: str, schedule: Schedule, gameday: GameDayFile, options: GameDayOptions, workload: Workload,
    runs: Sequence[NightRun], events: Mapping[str, Sequence[Event]], started: float, interrupted: str,
) -> NightSummary:
    verdicts: list[RunVerdict] = []
    figures: list[RunFigures] = []
    scores = []
    for run in runs:
        result = run.result
        if result is None:
            verdicts.append(RunVerdict(index=run.scheduled.index, run_id="", date=run.scheduled.date,
                                       folder=run.folder, status="not started", score=0.0, checks=()))
            continue
        status = "interrupted" if result.status == "interrupted" else ("completed" if run.succeeded else "failed")
        verdicts.append(RunVerdict(
            index=run.scheduled.index, run_id=result.run_id, date=run.scheduled.date, folder=run.folder,
            status=status, score=result.score.value,
            checks=tuple((c.name, c.verdict, c.evidence) for c in result.checks)))
        figures.append(run_figures(events[run.folder], run_id=result.run_id, completed=run.succeeded))
        scores.append((1.0, result.score))
    elapsed = sum(f.elapsed_seconds for f in figures)
    score = suite_score(scores)
    min_score = options.min_score if options.min_score is not None else gameday.min_score
    status = "interrupted" if interrupted else ("passed" if scores and score.value >= min_score else "failed")
    return NightSummary(
        night=night, status=status, seed=schedule.seed, schedule_file="schedule.json",
        gameday_file=schedule.source, commit=_commit(), cluster=options.cluster.kind, pipeline=workload.name,
        started_at=started, ended_at=time.time(), duration_seconds=schedule.duration_seconds,
        score=score.value, score_formula=score.formula, min_score=min_score,
        figures=night_figures(figures, elapsed_seconds=elapsed), runs=tuple(verdicts),
    )


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"

