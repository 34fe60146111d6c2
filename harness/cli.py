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
