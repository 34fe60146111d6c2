"""``mlchaos``: run experiments, heal after a killed run, validate experiment files, run the embedded
cluster on its own, check permissions."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.baseline import compare, describe, load_scores
from harness.cluster.kube.heartbeat import STALE_SECONDS
from harness.cluster.kube.preflight_cli import add_parser as add_preflight
from harness.cluster.options import ALLOWED_CONTEXTS_ENV, ARGUMENTS, ClusterOptions, options_from
from harness.errors import HarnessError
from harness.experiment.loader import load_experiment
from harness.lifecycle import install_signal_handlers
from harness.suite import DEFAULT_MIN_SCORE
from harness.suite_runner import SuiteRunner, refuse_unsafe
from harness.undo import default_state_dir, default_undo_log, heal
from harness.workload.declaration import load_workload


def _experiment_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files += sorted(x for x in p.iterdir() if x.suffix in (".yaml", ".yml", ".json"))
        else:
            files.append(p)
    if not files:
        raise HarnessError(f"no experiment files in {' '.join(paths)}; "
                           "pass .yaml/.json experiment files or a folder of them")
    return files


def cmd_run(args: argparse.Namespace) -> int:
    workload = load_workload(Path(args.pipeline)) if args.pipeline else None
    # All valid before anything starts.
    specs = [load_experiment(p, workload=workload) for p in _experiment_files(args.paths)]
    cluster = options_from(vars(args), keep_cluster=args.keep_cluster)
    for spec in specs:
        refuse_unsafe(spec, cluster)
    runner = SuiteRunner(
        reports_root=Path(args.reports),
        min_score=args.min_score,
        baseline=Path(args.baseline) if args.baseline else None,
        max_drop=args.max_drop,
        seed=args.seed,
        cluster=cluster,
    )
    try:
        for spec in specs:
            runner.run(spec)
    finally:
        suite = runner.close()
    if suite is None:
        return 1
    if suite.baseline is not None:
        print("\n".join(describe(suite.baseline)))
    verdict = "INTERRUPTED" if suite.interrupted else ("PASSED" if suite.passed else "FAILED")
    print(f"resilience score {suite.score.value:.1f} (minimum {suite.min_score:g}): "
          f"{verdict}; report: {runner.run_dir / 'report.html'}")
    return 0 if suite.passed else 1


def cmd_compare(args: argparse.Namespace) -> int:
    current = load_scores(Path(args.current))
    comparison = compare(
        baseline=load_scores(Path(args.baseline)), score=current.score, experiments=current.experiments,
        max_drop=args.max_drop,
    )
    print("\n".join(describe(comparison)))
    return 0 if comparison.passed else 1


def cmd_heal(args: argparse.Namespace) -> int:
    import harness.cluster.kind  # ... and to delete a kind cluster a killed run created
    import harness.cluster.kube.undo_kinds  # teaches heal to undo cordons and namespaces
    import harness.faults.late_data  # ... and to put back raw parts a late-data fault hid
    import harness.services.object_versions  # ... and to take back object versions a fault wrote
    import harness.services.proxy.undo_kind  # noqa: F401  # ... and to clear a standalone proxy's faults

    done = heal(default_undo_log())
    for line in done:
        print(f"healed: {line}")
    print(f"heal: {len(done)} leftover resource(s) cleaned up")
    if args.context:
        from harness.cluster.kube.sweep import sweep
        from harness.environments.existing import load_context

        options = ClusterOptions(kind="existing", context=args.context, allow_contexts=tuple(args.allow_context),
                                 kubeconfig=Path(args.kubeconfig) if args.kubeconfig else None)
        _, context, api_client = load_context(options)
        with api_client:
            swept = sweep(api_client, stale_seconds=args.stale_seconds)
        for line in swept:
            print(f"heal {context}: {line}")
        print(f"heal {context}: {sum(not line.startswith('kept') for line in swept)} leftover(s) removed")
    return 0


def cmd_cluster_up(args: argparse.Namespace) -> int:
    from harness.environments.cluster_up import cluster_up

    kubeconfig = Path(args.kubeconfig or default_state_dir() / "cluster-up" / "kubeconfig").resolve()
    try:
        cluster_up(kubeconfig=kubeconfig, progress=lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        print("cluster up: stopped; everything it started is gone", flush=True)
    return 0


def cmd_cluster_down(args: argparse.Namespace) -> int:
    from harness.environments.cluster_up import cluster_down

    print(cluster_down())
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    workload = load_workload(Path(args.pipeline)) if args.pipeline else None
    for path in _experiment_files(args.paths):
        spec = load_experiment(path, workload=workload)
        print(f"{path}: ok ({', '.join(c.name for c in spec.checks)})")
    return 0


def cmd_gameday(args: argparse.Namespace) -> int:
    from harness.gameday.main import GameDayOptions, gameday_main, parse_duration

    try:
        duration = parse_duration(args.duration)
    except ValueError as exc:
        raise HarnessError(f"--duration: {exc}") from None
    options = GameDayOptions(
        duration_seconds=duration, seed=args.seed, gameday_file=Path(args.file) if args.file else None,
        replay=Path(args.replay) if args.replay else None, pipeline=Path(args.pipeline) if args.pipeline else None,
        results=args.results, s3_endpoint_url=args.results_endpoint, min_score=args.min_score,
        settings=tuple(_setting(raw) for raw in args.set),
        cluster=options_from(vars(args), keep_cluster=False))
    return gameday_main(options, progress=lambda line: print(line, flush=True))


def _setting(raw: str) -> tuple[str, str]:
    key, sep, value = raw.partition("=")
    if not sep or not key:
        raise HarnessError(f"--set takes SETTING=VALUE (a setting the pipeline declares), got {raw!r}")
    return key.strip(), value.strip()


def cmd_trend(args: argparse.Namespace) -> int:
    from harness.gameday.trend import TrendThresholds, trend_main

    thresholds = TrendThresholds(nights=args.nights, score_drop=args.score_drop, goodput_drop=args.goodput_drop,
                                 mttr_p95_rise=args.mttr_p95_rise, steps_lost_rise=args.steps_lost_rise)
    return trend_main(args.results, thresholds=thresholds, out=Path(args.out) if args.out else None,
                      endpoint_url=args.results_endpoint)


def _add_gameday_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from harness.gameday.trend import TrendThresholds

    gd = sub.add_parser("gameday", help="a seeded, time-boxed night of mixed faults over back-to-back pipeline runs")
    gd.add_argument("--duration", default="20m", help="how long runs keep starting: 90s, 20m, 1h (default 20m)")
    gd.add_argument("--seed", type=int, default=1, help="the night's seed: the same seed and file draw the same night")
    gd.add_argument("--file", default=None, metavar="GAMEDAY.yaml",
                    help="the game-day file: fault catalogue, constraints, workload mix (default: the built-in one)")
    gd.add_argument("--replay", default=None, metavar="SCHEDULE.json",
                    help="run this schedule.json of an earlier night exactly (its seed and duration)")
    gd.add_argument("--pipeline", default=None, metavar="FILE", help="the pipeline under test (default: reference)")
    gd.add_argument("--set", action="append", default=[], metavar="SETTING=VALUE",
                    help="a pipeline setting for every run of the night (repeatable), e.g. broken=ignore-checkpoint")
    gd.add_argument("--results", default="reports/gamedays",
                    help="where nights are kept: a folder or s3://bucket/prefix (default reports/gamedays)")
    gd.add_argument("--results-endpoint", default=None, help="S3 endpoint URL for an s3:// --results")
    gd.add_argument("--min-score", type=float, default=None,
                    help="the night fails below this score (default: the game-day file's, else "
                         f"{DEFAULT_MIN_SCORE:g})")
    for argument in ARGUMENTS:
        argument.add_to(gd.add_argument)
    gd.set_defaults(func=cmd_gameday)
    defaults = TrendThresholds()
    tr = sub.add_parser("trend", help="plot the nights kept in --results and fail when the latest regressed")
    tr.add_argument("--results", default="reports/gamedays", help="a folder or s3://bucket/prefix")
    tr.add_argument("--results-endpoint", default=None, help="S3 endpoint URL for an s3:// --results")
    tr.add_argument("--out", default=None, help="the HTML page (default: <results>/trend.html)")
    tr.add_argument("--nights", type=int, default=defaults.nights,
                    help=f"compare with the median of this many previous nights (default {defaults.nights})")
    tr.add_argument("--score-drop", type=float, default=defaults.score_drop,
                    help=f"points the score may fall below the median (default {defaults.score_drop:g})")
    tr.add_argument("--goodput-drop", type=float, default=defaults.goodput_drop,
                    help=f"goodput (0-1) it may fall below the median (default {defaults.goodput_drop:g})")
    tr.add_argument("--mttr-p95-rise", type=float, default=defaults.mttr_p95_rise,
                    help=f"share MTTR p95 may rise above the median (default {defaults.mttr_p95_rise:g})")
    tr.add_argument("--steps-lost-rise", type=float, default=defaults.steps_lost_rise,
                    help=f"share steps lost may rise above the median (default {defaults.steps_lost_rise:g})")
    tr.set_defaults(func=cmd_trend)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlchaos", description="Chaos and resilience tests for ML training pipelines")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run experiments on a cluster (embedded by default) and write reports")
    run.add_argument("paths", nargs="*", default=["experiments"])
    run.add_argument("--min-score", type=float, default=DEFAULT_MIN_SCORE,
                     help=f"exit 1 when the suite score is below this (default {DEFAULT_MIN_SCORE:g})")
    for argument in ARGUMENTS:
        argument.add_to(run.add_argument)
    run.add_argument("--reports", default="reports", help="where run folders and reports/latest go")
    run.add_argument("--baseline", default=None, help="an earlier summary.json to compare the score with")
    run.add_argument("--max-drop", type=float, default=5.0, help="points the score may drop below the baseline")
    run.add_argument("--seed", type=int, default=None, help="override the pipelines' seed (replay a run)")
    run.add_argument("--pipeline", default=None, metavar="FILE",
                     help="the pipeline under test, a pipeline.yaml (default: each experiment's, else the reference)")
    run.add_argument("--keep-cluster", action="store_true",
                     help="keep the cluster (embedded: its work folder with pod logs; kind: the kind cluster)")
    run.set_defaults(func=cmd_run)
    cmp = sub.add_parser("compare", help="compare a run's summary.json with a baseline summary.json")
    cmp.add_argument("baseline")
    cmp.add_argument("current", nargs="?", default="reports/latest/summary.json")
    cmp.add_argument("--max-drop", type=float, default=5.0, help="exit 1 when the score dropped more than this")
    cmp.set_defaults(func=cmd_compare)
    hl = sub.add_parser("heal", help="clean up after a run that was killed")
    hl.add_argument("--context", default=None, help="also remove what killed runs left in this cluster "
                    "(namespaces with a stale heartbeat, their cordons and PriorityClasses); must be allowed")
    hl.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
    hl.add_argument("--allow-context", action="append", default=[],
                    help=f"allow this context (also ${ALLOWED_CONTEXTS_ENV})")
    hl.add_argument("--stale-seconds", type=float, default=STALE_SECONDS,
                    help="with --context: a run whose namespace heartbeat is older than this is dead "
                         f"(default {STALE_SECONDS:g})")
    hl.set_defaults(func=cmd_heal)
    cl = sub.add_parser("cluster", help="the embedded cluster on its own: up (until Ctrl-C or down) or down")
    cl_sub = cl.add_subparsers(dest="cluster_command", required=True)
    up = cl_sub.add_parser("up", help="start the embedded cluster with S3, Prometheus and the fault proxy")
    up.add_argument("--kubeconfig", default=None, help="write its kubeconfig here (default: in the state folder)")
    up.set_defaults(func=cmd_cluster_up)
    cl_sub.add_parser("down", help="stop the cluster mlchaos cluster up started").set_defaults(func=cmd_cluster_down)
    add_preflight(sub)
    val = sub.add_parser("validate", help="check experiment files without running them")
    val.add_argument("paths", nargs="*", default=["experiments"])
    val.add_argument("--pipeline", default=None, metavar="FILE", help="check them against this pipeline.yaml")
    val.set_defaults(func=cmd_validate)
    _add_gameday_parsers(sub)
    args = parser.parse_args(argv)
    install_signal_handlers()
    try:
        return int(args.func(args))
    except HarnessError as exc:
        print(f"mlchaos: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mlchaos: interrupted; the run is not scored as passed, and everything it started has been stopped",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
