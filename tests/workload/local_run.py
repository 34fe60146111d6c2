"""Run a declared workload's steps as local processes with the environment the harness gives them,
against a moto S3 server: the workload contract suite's driver (no cluster needed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import boto3

from harness.history.events import Event, TrainStep, from_json
from harness.workload.declaration import DeclaredWorkload
from harness.workload.pipeline_run import step_env
from harness.workload.role import StepTemplate
from harness.workload.settings import PipelineSettings

ROOT = Path(__file__).resolve().parents[2]
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass
class StepResult:
    step: str
    code: int
    events: list[Event] = field(default_factory=list)
    stderr: str = ""


@dataclass
class LocalRun:
    """One run (run id) of ``workload`` in ``bucket``; each step process gets its own TMPDIR, as a pod does."""

    workload: DeclaredWorkload
    endpoint: str
    bucket: str
    run_id: str
    tmp: Path
    params: Mapping[str, int | float | str | bool] = field(default_factory=dict)

    def env(self, step: StepTemplate, pod: str) -> dict[str, str]:
        settings = PipelineSettings(date="2026-11-21", seed=7, params=dict(self.params))
        scratch = self.tmp / pod
        scratch.mkdir(parents=True, exist_ok=True)
        harness_env = step_env(self.workload, settings, step=step, run_id=self.run_id, kind="daily",
                               bucket=self.bucket, s3_env={"S3_ENDPOINT_URL": self.endpoint, **CREDENTIALS},
                               started_at=time.time(), last=False)
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_", "PIPELINE_", "METRICS_"))}
        # As on a process node: ``python`` is the harness's interpreter.
        path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "/usr/bin:/bin")])
        return {**inherited, **harness_env, "POD_NAME": pod, "TMPDIR": str(scratch), "PYTHONPATH": str(ROOT),
                "PATH": path}

    def step(self, name: str) -> StepTemplate:
        return next(s for s in self.workload.steps if s.name == name)

    def run(self, name: str, *, pod: str = "") -> StepResult:
        step = self.step(name)
        proc = subprocess.run(list(step.command), cwd=ROOT, env=self.env(step, pod or f"{self.run_id}-{name}"),
                              capture_output=True, text=True, timeout=300)
        return StepResult(name, proc.returncode, parse(proc.stdout), proc.stderr)

    def run_until(self, name: str) -> list[StepResult]:
        """Every step up to (not including) ``name``, each of which must succeed."""
        results = []
        for step in self.workload.steps:
            if step.name == name:
                break
            result = self.run(step.name)
            assert result.code == 0, f"{step.name} exited {result.code}: {result.stderr[-2000:]}"
            results.append(result)
        return results

    def terminate_during_training(self, *, at_step: int, sig: int, pod: str) -> StepResult:
        """Start the training step, send ``sig`` once it reported ``at_step``, and wait for it to end."""
        step = self.step(self.workload.train_step)
        proc = subprocess.Popen(list(step.command), cwd=ROOT, env=self.env(step, pod), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        lines: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            event = from_json(line)
            if isinstance(event, TrainStep) and event.step >= at_step:
                proc.send_signal(sig)
                break
        out, err = proc.communicate(timeout=120)
        return StepResult(step.name, proc.returncode, parse("".join(lines) + out), err)

    def s3(self):  # type: ignore[no-untyped-def]
        return boto3.client("s3", endpoint_url=self.endpoint, **{k.lower(): v for k, v in CREDENTIALS.items()
                                                                  if k != "AWS_DEFAULT_REGION"},
                            region_name="us-east-1")

    def versions(self) -> list[tuple[str, str]]:
        """(key, version id) of every object version in the bucket."""
        found: list[tuple[str, str]] = []
        for page in self.s3().get_paginator("list_object_versions").paginate(Bucket=self.bucket):
            found += [(v["Key"], v["VersionId"]) for v in page.get("Versions", [])]
        return sorted(found)


def parse(stdout: str) -> list[Event]:
    events = [from_json(line) for line in stdout.splitlines() if line.startswith("{")]
    return [e for e in events if e is not None]


SIGTERM, SIGKILL = signal.SIGTERM, signal.SIGKILL
