"""``mlchaos``: run experiments, heal after a killed run, validate experiment files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.baseline import compare, describe, load_scores
from harness.errors import HarnessError
from harness.experiment.loader import load_experiment
from harness.lifecycle import install_signal_handlers
from harness.suite import DEFAULT_MIN_SCORE
from harness.suite_runner import SuiteRunner
from harness.environment import CLUSTER_KINDS
from harness.undo import default_undo_log, heal


def _experiment_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files += sorted(x for x in p.iterdir() if x.suffix in (".yaml", ".yml", ".json"))
        else:
            files.append(p)
    if not files:
        raise HarnessError(f"no experiment files in {' '.join(paths)}; pass .yaml/.json experiment files or a folder of them")
    return files


def cmd_run(args: argparse.Namespace) -> int:
    specs = [load_experiment(p) for p in _experiment_files(args.paths)]  # all valid before anything starts
    runner = SuiteRunner(
        reports_root=Path(args.reports),
        min_score=args.min_score,
        baseline=Path(args.baseline) if args.baseline else None,
        max_drop=args.max_drop,
        seed=args.seed,
        keep_cluster=args.keep_cluster,
        cluster=args.cluster,
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
    import harness.cluster.kube.undo_kinds  # noqa: F401  # teaches heal to undo cordons and namespaces

    done = heal(default_undo_log())
    for line in done:
        print(f"healed: {line}")
    print(f"heal: {len(done)} leftover resource(s) cleaned up")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    for path in _experiment_files(args.paths):
        spec = load_experiment(path)
        print(f"{path}: ok ({', '.join(c.name for c in spec.checks)})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlchaos", description="Chaos and resilience tests for ML training pipelines")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run experiments on the embedded cluster and write reports")
    run.add_argument("paths", nargs="*", default=["experiments"])
    run.add_argument("--min-score", type=float, default=DEFAULT_MIN_SCORE,
                     help=f"exit 1 when the suite score is below this (default {DEFAULT_MIN_SCORE:g})")
    run.add_argument("--cluster", choices=CLUSTER_KINDS, default="embedded",
                     help="where experiments run (embedded: a local Kubernetes control plane with process nodes)")
    run.add_argument("--reports", default="reports", help="where run folders and reports/latest go")
    run.add_argument("--baseline", default=None, help="an earlier summary.json to compare the score with")
    run.add_argument("--max-drop", type=float, default=5.0, help="points the score may drop below the baseline")
    run.add_argument("--seed", type=int, default=None, help="override the pipelines' seed (replay a run)")
    run.add_argument("--keep-cluster", action="store_true", help="keep the cluster's work folder (pod logs)")
    run.set_defaults(func=cmd_run)
    cmp = sub.add_parser("compare", help="compare a run's summary.json with a baseline summary.json")
    cmp.add_argument("baseline")
    cmp.add_argument("current", nargs="?", default="reports/latest/summary.json")
    cmp.add_argument("--max-drop", type=float, default=5.0, help="exit 1 when the score dropped more than this")
    cmp.set_defaults(func=cmd_compare)
    sub.add_parser("heal", help="clean up after a run that was killed").set_defaults(func=cmd_heal)
    val = sub.add_parser("validate", help="check experiment files without running them")
    val.add_argument("paths", nargs="*", default=["experiments"])
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
