"""Fixtures for the example pipelines' tests: a moto S3 server of their own, and a driver that runs
the churn steps as real processes with the environment the harness gives a pod."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.moto_s3 import moto_s3

ROOT = Path(__file__).resolve().parents[2]
CHURN = ROOT / "examples" / "churn"
DATE = "2026-11-21"
SEED = 7
TRAIN_STEPS = 200
CHECKPOINT_EVERY = 50
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass(frozen=True)
class Finished:
    """An ended step process: exit code, its event lines (parsed), stderr."""

    code: int
    events: list[dict[str, Any]] = field(default_factory=list)
    stderr: str = ""

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == kind]


def parse_events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


@dataclass(frozen=True)
class Churn:
    """Runs churn steps for one bucket; each call is one pod: its own POD_NAME and TMPDIR."""

    endpoint: str
    bucket: str
    pods: Path
    careless: bool = False

    def env(self, run_id: str, pod: str, **extra: str) -> dict[str, str]:
        scratch = self.pods / pod
        scratch.mkdir(parents=True, exist_ok=True)
        inherited = {k: v for k, v in os.environ.items()
                     if not k.startswith(("AWS_", "S3_", "PIPELINE_", "METRICS_", "CARELESS"))}
        env = {
            **inherited, **CREDENTIALS,
            "PYTHONPATH": str(ROOT), "PIPELINE_NAME": "churn", "PARTITION_DATE": DATE, "SEED": str(SEED),
            "RUN_ID": run_id, "RUN_KIND": "daily", "RUN_STARTED_AT": f"{time.time():.3f}",
            "S3_ENDPOINT_URL": self.endpoint, "S3_BUCKET": self.bucket, "POD_NAME": pod, "TMPDIR": str(scratch),
            "TRAIN_STEPS": str(TRAIN_STEPS), "CHECKPOINT_EVERY": str(CHECKPOINT_EVERY),
        }
        if self.careless:
            env["CARELESS"] = "1"
        return {**env, **extra}

    def run(self, step: str, run_id: str, *, pod: str = "") -> Finished:
        pod = pod or f"{run_id}-{step}-{time.monotonic_ns()}"
        proc = subprocess.run([sys.executable, str(CHURN / f"{step}.py")], cwd=ROOT, env=self.env(run_id, pod),
                              capture_output=True, text=True, timeout=180)
        return Finished(proc.returncode, parse_events(proc.stdout), proc.stderr)

    def run_all(self, run_id: str) -> dict[str, Finished]:
        done = {}
        for step in ("prepare", "train", "evaluate", "publish"):
            done[step] = self.run(step, run_id)
            assert done[step].code == 0, f"{step} exited {done[step].code}: {done[step].stderr[-2000:]}"
        return done

    def start_train(self, run_id: str, *, pod: str, **extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, str(CHURN / "train.py")], cwd=ROOT, env=self.env(run_id, pod, **extra),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def interrupt_train(self, run_id: str, *, pod: str, at_step: int, sig: signal.Signals) -> Finished:
        """Start training, send ``sig`` once it reported ``at_step``, and wait for the process to end."""
        proc = self.start_train(run_id, pod=pod)
        lines = read_until_step(proc, at_step)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
        return Finished(proc.returncode, parse_events("".join(lines) + out), err)

    def s3(self) -> Any:
        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id="testing",
                            aws_secret_access_key="testing", region_name="us-east-1")

    def versions(self, prefix: str = "") -> list[tuple[str, str]]:
        """(key, version id) of every object version (delete markers excluded) under ``prefix``."""
        found: list[tuple[str, str]] = []
        for page in self.s3().get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=prefix):
            found += [(v["Key"], v["VersionId"]) for v in page.get("Versions", [])]
        return sorted(found)


def read_until_step(proc: subprocess.Popen[str], at_step: int) -> list[str]:
    """The stdout lines of ``proc`` up to its ``train_step`` event for ``at_step`` (or later)."""
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("{"):
            event = json.loads(line)
            if event["event"] == "train_step" and event["step"] >= at_step:
                return lines
    raise AssertionError(f"training ended before step {at_step}: {''.join(lines)[-2000:]}")


@pytest.fixture(scope="session")
def endpoint() -> Iterator[str]:
    with moto_s3() as url:
        yield url


def make_bucket(endpoint: str, name: str) -> None:
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                      region_name="us-east-1")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})


@pytest.fixture(scope="session")
def churn(endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Churn:
    """The churn pipeline on a shared versioned bucket (tests use run ids of their own)."""
    make_bucket(endpoint, "churn-tests")
    return Churn(endpoint=endpoint, bucket="churn-tests", pods=tmp_path_factory.mktemp("pods"))


@pytest.fixture(scope="session")
def uninterrupted(churn: Churn) -> dict[str, Finished]:
    """One uninterrupted run of every step: the outcome interrupted runs must reproduce."""
    return churn.run_all("uninterrupted")


@pytest.fixture
def careless(endpoint: str, tmp_path: Path) -> Churn:
    """The careless variant on a bucket of its own."""
    make_bucket(endpoint, "churn-careless")
    return Churn(endpoint=endpoint, bucket="churn-careless", pods=tmp_path / "pods", careless=True)
