"""What an experiment says about the pipeline run it launches."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from harness.workload.declaration import WorkloadError, coerce_setting
from harness.workload.role import SettingValue, StepTemplate, Workload

# Settings a backfill sets on the runs it launches, when the workload declares them.
TRAIN_STEPS = "train_steps"
CHECKPOINT_EVERY = "checkpoint_every"


@dataclass(frozen=True, kw_only=True)
class PipelineSettings:
    """The harness's settings for a pipeline run, and the workload's own (``params``).

    ``restart_policy`` is the Jobs' pod restart policy: ``OnFailure`` restarts a
    failed container in place at once (the kubelet's crash-loop backoff: 0 s, then
    10 s doubling), ``Never`` makes the Job controller replace the pod after its own
    backoff (10 s doubling). A deleted or evicted pod is replaced at once under
    either. ``params`` are checked against the workload's declared settings
    (:func:`check_params`) and passed as their env vars.
    """

    date: str = "2026-11-21"
    seed: int = 7
    backoff_limit: int = 6
    restart_policy: str = "OnFailure"
    termination_grace_period_seconds: int = 30
    step_timeout_seconds: float = 600.0
    gpus: int = 0  # >0: the training step requests nvidia.com/gpu and gets DEVICE=cuda
    crash_points: str = ""  # "<point>#<n>,...": crash points armed for a crash-point sweep (mlchaos_probe.crash_points)
    crash_pause_seconds: float = 3.0  # how long an armed crash point holds
    params: Mapping[str, SettingValue] = field(default_factory=dict)

    def with_params(self, **values: SettingValue) -> PipelineSettings:
        return replace(self, params={**self.params, **values})


def check_params(workload: Workload, params: Mapping[str, object], *, source: str) -> dict[str, SettingValue]:
    """``params`` typed as ``workload`` declares them; a WorkloadError names any it does not accept."""
    unknown = sorted(set(params) - set(workload.settings))
    if unknown:
        known = ", ".join(sorted(workload.settings)) or "none"
        raise WorkloadError(f"{source}: pipeline {workload.name} does not accept setting(s) {', '.join(unknown)} "
                            f"(it declares: {known}); remove them or declare them in its pipeline.yaml")
    return {name: coerce_setting(workload.settings[name], value, source=source) for name, value in params.items()}


def run_env(workload: Workload, settings: PipelineSettings) -> dict[str, str]:
    """The environment variables every step of a run with ``settings`` gets from its settings."""
    env = {"PIPELINE_NAME": workload.name, "PARTITION_DATE": settings.date, "SEED": str(settings.seed)}
    for name, spec in workload.settings.items():
        value = settings.params.get(name, spec.default)
        if value is not None:
            env[spec.env] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def effective_params(workload: Workload, settings: PipelineSettings) -> dict[str, SettingValue]:
    """Every declared setting's value for a run (given, else its default); ``None`` ones left out."""
    values = {name: settings.params.get(name, spec.default) for name, spec in workload.settings.items()}
    return {k: v for k, v in values.items() if v is not None}


def steps_through_training(workload: Workload) -> tuple[StepTemplate, ...]:
    """The training step and every step it depends on, in order (what an uninterrupted run needs)."""
    by_name = {s.name: s for s in workload.steps}
    needed: set[str] = set()
    todo = [workload.train_step]
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo.extend(by_name[name].after)
    return tuple(s for s in workload.steps if s.name in needed)
