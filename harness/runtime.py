"""The experiment being run right now, for Chaos Toolkit activities to act on.

Chaos Toolkit calls plain functions by module path; they find the cluster, the
history and the pipeline runs of the current experiment here. The runner (or
the harness control under a stock ``chaos run``) activates one experiment at a
time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness import lifecycle
from harness.cluster.base import Cluster
from harness.errors import HarnessError
from harness.faults.recorder import FaultRecorder
from harness.faults.role import FaultContext
from harness.history.store import History
from harness.services.proxy import ProxyControl
from harness.undo import default_undo_log
from harness.workload.backfill import Backfill
from harness.workload.pipeline_run import PipelineRun
from harness.workload.role import Workload
from harness.workload.settings import CHECKPOINT_EVERY, TRAIN_STEPS, PipelineSettings

MAIN = "main"


@dataclass(frozen=True, kw_only=True)
class Environment:
    """A started cluster and what pipelines need to reach its services."""

    cluster: Cluster
    s3_env: Mapping[str, str]
    cache_dir: Path | None = None
    logs_dir: Path | None = None  # where the cluster keeps pod logs, copied into reports
    pod_limit: int | None = None  # most pods that may run at once (slots, or a ResourceQuota)
    scoped_quotas: Mapping[str, int] = field(default_factory=dict)  # "label=value" -> most running pods
    proxies: Mapping[str, ProxyControl] = field(default_factory=dict)  # dependency name -> its fault proxy
    s3_direct_url: str = ""  # S3 without the proxy, for the harness's own reads
    prometheus_url: str = ""  # the Prometheus that scrapes the pipeline's pods
    kubeconfig: Path | None = None  # reaches the cluster with kubectl or any Kubernetes client

    def proxy(self, target: str) -> ProxyControl:
        """The fault proxy in front of ``target``; a HarnessError names the ones there are."""
        if target not in self.proxies:
            known = ", ".join(sorted(self.proxies)) or "none"
            raise HarnessError(f"no fault proxy in front of {target!r} in this environment (proxied: {known})")
        return self.proxies[target]


class ActiveExperiment:
    """Mutable state of the experiment being run: its pipeline runs and faults."""

    def __init__(
        self, *, env: Environment, name: str, run_id: str, workload: Workload, settings: PipelineSettings,
        history: History, bucket: str, chaos_seed: int | None = None,
    ) -> None:
        self.env = env
        self.name = name
        self.run_id = run_id
        self.workload = workload
        self.settings = settings
        self.history = history
        self.bucket = bucket
        self.pipeline_runs: dict[str, PipelineRun] = {}  # by name; "main" is the judged one
        self._lock = threading.Lock()
        self.interrupted = ""  # why the run was stopped before its end, when it was
        # --chaos-seed overrides every pipeline's seed (suite_runner), so the pipeline's seed is the chaos seed,
        # unless the caller draws faults from a seed of its own (a game day's night seed).
        self.chaos_seed: int = settings.seed if chaos_seed is None else chaos_seed
        self.faults = FaultRecorder(sink=history.append, experiment=name, context=FaultContext(
            cluster=env.cluster, seed=self.chaos_seed, run_labels={"run": run_id}, train_step=workload.train_step,
            proxies=env.proxies, undo=default_undo_log(), launch_backfill=self.launch_backfill,
            s3_url=env.s3_direct_url, bucket=bucket))

    def interrupt(self, reason: str) -> None:
        """Stop the experiment now: waits in activities raise, pipeline runs and backfills are cancelled.
        The run is then judged ``interrupted``, never passed."""
        with self._lock:
            if self.interrupted:
                return
            self.interrupted = reason
        self.history.interrupt(reason)
        self.cancel_runs()
        self.heal()

    def start_pipeline_run(self, *, kind: str, name: str = MAIN, date: str | None = None,
                           settings: PipelineSettings | None = None) -> PipelineRun:
        """Start a named pipeline run. The run named ``main`` gets the experiment's run id and is
        the one the checks judge; others get ``<run id>-<name>``. ``date`` overrides the experiment's,
        ``settings`` all of them (a fault that arms the run, such as the crash-point sweep)."""
        with self._lock:
            if name in self.pipeline_runs:
                raise HarnessError(f"experiment {self.name!r} already has a pipeline run named {name!r}")
            run_id = self.run_id if name == MAIN else f"{self.run_id}-{name}"
            settings = settings or self.settings
            settings = settings if date is None else replace(settings, date=date)
            run = PipelineRun(
                cluster=self.env.cluster,
                sink=self.history.append,
                workload=self.workload,
                settings=settings,
                run_id=run_id,
                kind=kind,
                bucket=self.bucket,
                s3_env=dict(self.env.s3_env),
            )
            self.pipeline_runs[name] = run
        run.start()
        return run

    def run_named(self, name: str = MAIN) -> PipelineRun:
        """The pipeline run started under ``name``."""
        run = self.pipeline_runs.get(name)
        if run is None:
            raise HarnessError(
                f"experiment {self.name!r} has no pipeline run named {name!r}; its method must start it "
                "(harness.chaosext.pipeline.actions.start_pipeline_run) before acting on it"
            )
        return run

    def main_run(self) -> PipelineRun:
        """The experiment's main run, the one the checks judge."""
        return self.run_named(MAIN)

    def launch_backfill(self, *, name: str, dates: Sequence[str], concurrency: int, train_steps: int) -> Backfill:
        """A backfill over ``dates`` beside the experiment's runs (same store, same cluster), not started:
        the backfill storm fault (:mod:`harness.faults.backfill_storm`) starts and heals it."""
        return Backfill(
            name=name,
            cluster=self.env.cluster,
            sink=self.history.append,
            workload=self.workload,
            settings=self.backfill_settings(train_steps),
            dates=dates,
            concurrency=concurrency,
            bucket=self.bucket,
            s3_env=dict(self.env.s3_env),
        )

    def backfill_settings(self, train_steps: int) -> PipelineSettings:
        """The experiment's settings for a backfill's runs: ``train_steps`` steps, checkpoints every
        quarter of them, where the workload declares those settings."""
        declared = self.workload.settings
        values = {k: v for k, v in ((TRAIN_STEPS, train_steps), (CHECKPOINT_EVERY, max(1, train_steps // 4)))
                  if k in declared}
        return self.settings.with_params(**values)

    def heal(self, fault_id: str | None = None) -> list[str]:
        """Heal one active fault, or all of them; returns the fault ids healed. Healing twice is harmless."""
        return self.faults.heal(fault_id)

    def cancel_runs(self) -> None:
        """Stop every pipeline run still going (backfills are faults: ``heal`` stops them)."""
        for run in list(self.pipeline_runs.values()):
            if run.outcome is None:
                run.cancel()


_lock = threading.Lock()
_current: ActiveExperiment | None = None


def current() -> ActiveExperiment:
    """The active experiment; raises when activities run outside one, or once it was interrupted
    (so the rest of an interrupted method does nothing)."""
    if _current is None:
        raise HarnessError(
            "no harness experiment is active: run experiments through pytest (make chaos), "
            "`mlchaos run`, or `chaos run` with the harness control declared in the experiment"
        )
    if _current.interrupted:
        raise HarnessError(f"experiment {_current.name!r} was interrupted ({_current.interrupted}); "
                           "nothing more is done")
    return _current


def is_active() -> bool:
    return _current is not None


@contextmanager
def activate(experiment: ActiveExperiment) -> Iterator[ActiveExperiment]:
    global _current
    with _lock:
        if _current is not None:
            raise HarnessError(f"experiment {_current.name!r} is already running; experiments run one at a time")
        _current = experiment
    remove_hook = lifecycle.on_interrupt(experiment.interrupt)
    if lifecycle.interruption.is_set():
        experiment.interrupt("the harness was told to stop")
    try:
        yield experiment
    finally:
        remove_hook()
        with _lock:
            _current = None
