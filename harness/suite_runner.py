"""Run experiments one after another on one environment, then write the reports.

Used by the CLI and, one experiment per test item, by the pytest plugin. The
environment starts with the first experiment and stops in ``close``, also on
Ctrl-C, SIGTERM or a crash of an experiment.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from harness.baseline import load_scores
from harness.cluster.options import ClusterOptions
from harness.environment import open_environment
from harness.errors import HarnessError
from harness.experiment.model import ExperimentSpec
from harness.experiment.result import ExperimentResult
from harness.experiment.runner import ExperimentInterrupted, run_experiment
from harness.report.writer import write_reports
from harness.runtime import Environment
from harness.suite import SuiteResult, summarize

NODE_FAULT_MODULES = frozenset({"harness.chaosext.node.actions"})


def refuse_unsafe(spec: ExperimentSpec, cluster: ClusterOptions) -> None:
    """A HarnessError, before anything runs, when ``spec`` would cordon or drain nodes of a cluster
    where node faults were not allowed."""
    if cluster.kind == "existing" and not cluster.allow_node_faults and spec.activity_modules() & NODE_FAULT_MODULES:
        raise HarnessError(f"experiment {spec.name} cordons and drains nodes, and node faults are not allowed on "
                           f"context {cluster.context}; pass --allow-node-faults (with --node-selector naming the "
                           "nodes it may use) or leave this experiment out")


class SuiteRunner:
    def __init__(
        self,
        *,
        reports_root: Path,
        min_score: float,
        baseline: Path | None = None,
        max_drop: float = 5.0,
        seed: int | None = None,
        cluster: ClusterOptions | None = None,
        progress: Callable[[str], None] = print,
    ) -> None:
        self.tag = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        self.run_dir = reports_root / self.tag
        self.min_score = min_score
        self.baseline = load_scores(baseline) if baseline is not None else None  # fail before running, not after
        self.max_drop = max_drop
        self.seed = seed
        self.cluster = cluster or ClusterOptions()
        self.results: list[ExperimentResult] = []
        self._progress = progress
        self._stack = ExitStack()
        self._env: Environment | None = None
        self._started = time.time()

    def environment(self) -> Environment:
        if self._env is None:
            self._progress(f"starting the {self.cluster.kind} environment (Kubernetes, S3, Prometheus, fault proxy)")
            self._env = self._stack.enter_context(open_environment(
                options=self.cluster, run=self.tag, kubeconfig_copy=self.run_dir / "kubeconfig",
                progress=self._progress))
        return self._env

    def run(self, spec: ExperimentSpec) -> ExperimentResult:
        refuse_unsafe(spec, self.cluster)
        if self.seed is not None:
            spec = replace(spec, pipeline=replace(spec.pipeline, seed=self.seed))
        env = self.environment()
        t0 = time.monotonic()
        self._progress(f"experiment {spec.name}: running (seed {spec.pipeline.seed})")
        result = run_experiment(
            spec=spec, env=env, out_dir=self.run_dir / spec.name, tag=self.tag, progress=self._progress
        )
        verdicts = ", ".join(f"{c.name}={c.verdict}" for c in result.checks)
        self._progress(
            f"experiment {spec.name}: score {result.score.value:.1f} ({verdicts}) in {time.monotonic() - t0:.1f}s"
        )
        self.results.append(result)
        if result.status == "interrupted":
            raise ExperimentInterrupted(f"experiment {spec.name} was interrupted: {result.error}")
        return result

    def close(self) -> SuiteResult | None:
        """Stop the environment; write and return the suite's reports when any experiment ran."""
        cluster = self._env.cluster.kind if self._env is not None else self.cluster.kind
        version = self._env.cluster.version if self._env is not None else ""
        self._stack.close()
        if not self.results:
            return None
        suite = summarize(
            run_id=self.tag,
            cluster=cluster,
            kubernetes_version=version,
            started_at=self._started,
            ended_at=time.time(),
            results=self.results,
            min_score=self.min_score,
            baseline=self.baseline,
            max_drop=self.max_drop,
        )
        write_reports(suite, self.run_dir)
        return suite
