"""Fixtures: a moto S3 server, and helpers that run pipeline steps as real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest

from tests.moto_s3 import moto_s3

ROOT = Path(__file__).resolve().parents[2]
DATE = "2024-03-01"
TRAIN_STEPS = 60
CHECKPOINT_EVERY = 10



@dataclass
class Result:
    """A finished step process: exit code, parsed event lines, stderr."""

    code: int
    events: list[dict] = field(default_factory=list)
    stderr: str = ""

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["event"] == kind]


def parse(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


@dataclass
class Pipeline:
    """Runs steps of one (bucket, date) with per-call overrides of the environment."""

    endpoint: str
    bucket: str

    def env(self, run_id: str, **overrides: str) -> dict[str, str]:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_", "PIPELINE_"))},
            "PYTHONPATH": str(ROOT),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "S3_ENDPOINT_URL": self.endpoint,
            "S3_BUCKET": self.bucket,
            "RUN_ID": run_id,
            "PARTITION_DATE": DATE,
            "TRAIN_STEPS": str(TRAIN_STEPS),
            "CHECKPOINT_EVERY": str(CHECKPOINT_EVERY),
        }
        env.update(overrides)
        return {k: v for k, v in env.items() if v is not None}

    def run(self, step: str, run_id: str, **overrides: str) -> Result:
        proc = subprocess.run([sys.executable, "-m", "reference_pipeline", step], cwd=ROOT,
                              env=self.env(run_id, **overrides), capture_output=True, text=True, timeout=120)
        return Result(proc.returncode, parse(proc.stdout), proc.stderr)

    def start(self, step: str, run_id: str, **overrides: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "reference_pipeline", step], cwd=ROOT,
                                env=self.env(run_id, **overrides), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    @property
    def s3(self):  # type: ignore[no-untyped-def]
        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id="testing",
                            aws_secret_access_key="testing", region_name="us-east-1")

    def keys(self, prefix: str) -> list[str]:
        response = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for o in response.get("Contents", []))


@pytest.fixture(scope="session")
def endpoint() -> Iterator[str]:
    with moto_s3() as url:
        yield url


@pytest.fixture(scope="session")
def prepared(endpoint: str) -> Pipeline:
    """A bucket whose day has been ingested, validated and featurized (shared, read-mostly)."""
    pipeline = Pipeline(endpoint, "prepared")
    for step in ("ingest", "validate", "features"):
        assert pipeline.run(step, "prep").code == 0
    return pipeline


@pytest.fixture(scope="session")
def baseline(prepared: Pipeline) -> dict[str, Result]:
    """An uninterrupted run of the run-scoped steps: the reference outcome."""
    return {step: prepared.run(step, "base") for step in ("validate", "train", "evaluate", "register")}


@pytest.fixture
def fresh(endpoint: str, request: pytest.FixtureRequest) -> Pipeline:
    """An empty bucket of its own."""
    name = "t-" + "".join(ch if ch.isalnum() else "-" for ch in request.node.name.lower())[:50].strip("-")
    return Pipeline(endpoint, name)
