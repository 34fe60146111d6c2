"""What every step process does around its own work: configuration, events, metrics, exit codes."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from botocore.exceptions import BotoCoreError, ClientError

import mlchaos_probe as probe
from mlchaos_probe import environment
from mlchaos_probe.metrics import PipelineMetrics

from config import Config, Keys, UsageError, die
from net import deterministic
from storage import Bucket

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_GATE = 3  # the model did not pass the evaluation gate
EXIT_SIGTERM = 143  # 128 + SIGTERM: stopped on request, state saved


@dataclass(frozen=True, kw_only=True)
class Step:
    """What a step's work gets."""

    name: str
    config: Config
    keys: Keys
    bucket: Bucket
    metrics: PipelineMetrics

    def skip(self, reason: str) -> None:
        """Report an idempotent skip: this step's output already exists."""
        probe.step_skipped(run_id=self.config.run_id, step_name=self.name, reason=reason)

    def wrote(self, artifact: str, key: str, logical_id: str) -> None:
        """Report an object this process created (never one it found already there)."""
        probe.artifact_written(run_id=self.config.run_id, artifact=artifact, key=key, logical_id=logical_id)


def run(name: str, work: Callable[[Step], int]) -> NoReturn:
    """Run ``work`` as step ``name`` and exit with its code (1, with one line, when S3 fails for good)."""
    started = time.perf_counter()
    try:
        config = Config.from_env()
        metrics = PipelineMetrics.from_env(step_name=name)
    except (UsageError, ValueError, OSError) as error:
        die(f"{name}: {error}")
    probe.run_started(pipeline=config.pipeline, run_id=config.run_id, date=config.date, kind=config.kind,
                      step_name=name)
    deterministic(config.device)  # before the fingerprint, which records these switches
    environment.report(run_id=config.run_id, extra={"careless": str(config.careless).lower()})
    step = Step(name=name, config=config, keys=Keys(config), metrics=metrics,
                bucket=Bucket(config, on_retries=metrics.s3_retries))
    try:
        code = work(step)
    except (BotoCoreError, ClientError) as error:
        die(f"{name}: S3 request failed after retries: {error}", EXIT_FAILED)
    seconds = time.perf_counter() - started
    metrics.step_duration(name, seconds)
    if code == EXIT_OK:
        probe.step_finished(run_id=config.run_id, step_name=name, seconds=round(seconds, 6))
    sys.stdout.flush()
    raise SystemExit(code)
