"""One run of a workload: its steps as Jobs, one after another.

Like an orchestrator's DAG run (Argo, Airflow): each step is a Kubernetes Job,
retried by the cluster up to its backoff limit; a step that fails for good stops
the run. Steps run one at a time in the declared order (which respects each
step's ``after``). The run executes in a background thread so faults can be
injected while it trains.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harness.cluster.base import PRIORITY_BACKFILL, PRIORITY_DAILY, Cluster, EventSink, JobSpec, RestartPolicy
from harness.errors import HarnessError
from harness.workload.role import StepTemplate, Workload
from harness.workload.settings import PipelineSettings, run_env

# Prometheus applies discovered targets at most every 5 s, then scrapes every 1 s: the last step lingers.
METRICS_LINGER_SECONDS = "8"
METRICS_PORT = 9100  # the container port Prometheus scrapes (process nodes map it to a free host port)


@dataclass(frozen=True, kw_only=True)
class RunOutcome:
    run_id: str
    succeeded: bool
    failed_step: str  # "" when succeeded or cancelled before any failure
    duration_seconds: float
    detail: str


def step_env(
    workload: Workload, settings: PipelineSettings, *, step: StepTemplate, run_id: str, kind: str, bucket: str,
    s3_env: Mapping[str, str], started_at: float, last: bool, gpus: int = 0,
) -> dict[str, str]:
    """The environment a step's process gets from the harness (the workload contract's harness side;
    the cluster adds POD_NAME, NODE_NAME, POD_IP, JOB_NAME, METRICS_PORT and TMPDIR)."""
    env = {
        **run_env(workload, settings),
        **step.env,
        **s3_env,
        "S3_BUCKET": bucket,
        "RUN_ID": run_id,
        "RUN_KIND": kind,
        "RUN_STARTED_AT": f"{started_at:.3f}",
        "PYTHONUNBUFFERED": "1",
    }
    if last:
        env["METRICS_LINGER_SECONDS"] = METRICS_LINGER_SECONDS
    if gpus:
        # A DEVICE the run's settings chose wins: process nodes advertise GPUs without having any.
        env.setdefault("DEVICE", "cuda")
    if settings.crash_points:  # arms mlchaos_probe.crash_points for a crash-point sweep
        env["MLCHAOS_CRASH_POINTS"] = settings.crash_points
        env["MLCHAOS_CRASH_PAUSE_SECONDS"] = f"{settings.crash_pause_seconds:g}"
    return env


class PipelineRun:
    """A pipeline run in the background. Use ``start``, then ``wait`` or ``cancel``."""

    def __init__(
        self,
        *,
        cluster: Cluster,
        sink: EventSink,
        workload: Workload,
        settings: PipelineSettings,
        run_id: str,
        kind: str,
        bucket: str,
        s3_env: dict[str, str],
        steps: Sequence[StepTemplate] | None = None,
        name: str = "",
        priority_class: str = "",
        cpu_request: str = "",
        cpu_limit: str = "",
    ) -> None:
        self.run_id = run_id
        self.name = name or run_id  # unique per launch: two launches of one run id (a retried backfill) coexist
        self.kind = kind
        self._priority_class = priority_class or (PRIORITY_DAILY if kind == "daily" else PRIORITY_BACKFILL)
        self._cpu_request = cpu_request
        self._cpu_limit = cpu_limit
        self._cluster = cluster
        self._sink = sink
        self._workload = workload
        self._settings = settings
        self._bucket = bucket
        self._s3_env = s3_env
        self._steps = tuple(workload.steps if steps is None else steps)
        self._cancelled = threading.Event()
        self._outcome: RunOutcome | None = None
        self._thread = threading.Thread(target=self._run, name=f"pipeline-{self.name}", daemon=True)
        self._started_at = 0.0
        self._current_job = ""

    def job_name(self, step: str) -> str:
        return f"{self.name}-{step}"

    def start(self) -> None:
        self._started_at = time.time()
        self._thread.start()

    @property
    def outcome(self) -> RunOutcome | None:
        """The outcome once the run has ended, else ``None``."""
        return self._outcome

    def wait(self, *, timeout: float) -> RunOutcome:
        self._thread.join(timeout)
        if self._outcome is None:
            raise HarnessError(f"pipeline run {self.run_id} did not finish within {timeout:g}s")
        return self._outcome

    def cancel(self) -> None:
        """Stop the run: no further steps; the running step's Job is deleted (with grace)."""
        self._cancelled.set()
        if self._current_job:
            with contextlib.suppress(HarnessError):  # already gone
                self._cluster.delete_job(self._current_job)
        self._thread.join(60)

    def _spec(self, step: StepTemplate) -> JobSpec:
        s = self._settings
        gpus = s.gpus if step.name == self._workload.train_step else 0
        env = step_env(self._workload, s, step=step, run_id=self.run_id, kind=self.kind, bucket=self._bucket,
                       s3_env=self._s3_env, started_at=self._started_at, last=step == self._steps[-1], gpus=gpus)
        policy: RestartPolicy = "Never" if s.restart_policy == "Never" else "OnFailure"
        return JobSpec(
            name=self.job_name(step.name),
            command=step.command,
            image=step.image,
            env=env,
            labels={"pipeline": self._workload.name, "run": self.run_id, "step": step.name, "kind": self.kind},
            backoff_limit=s.backoff_limit,
            restart_policy=policy,
            priority_class=self._priority_class,
            termination_grace_period_seconds=s.termination_grace_period_seconds,
            metrics_port=METRICS_PORT,
            cpu_request=self._cpu_request or step.cpu_request,
            cpu_limit=self._cpu_limit or step.cpu_limit,
            gpus=gpus,
        )

    def _run(self) -> None:
        failed, detail = "", "all steps succeeded"
        step: StepTemplate | None = None
        try:
            for step in self._steps:
                if self._cancelled.is_set():
                    failed, detail = step.name, "cancelled"
                    break
                spec = self._spec(step)
                self._current_job = spec.name
                self._cluster.submit_job(spec, sink=self._sink)
                status = self._cluster.wait_job(spec.name, timeout=self._settings.step_timeout_seconds)
                if not status.succeeded:
                    failed = step.name
                    detail = f"step {step.name} failed after {status.failed} failed attempt(s)"
                    break
        except HarnessError as exc:
            failed, detail = failed or (step.name if step else ""), str(exc)
        finally:
            self._current_job = ""
            self._outcome = RunOutcome(
                run_id=self.run_id,
                succeeded=not failed,
                failed_step=failed,
                duration_seconds=time.time() - self._started_at,
                detail=detail,
            )
