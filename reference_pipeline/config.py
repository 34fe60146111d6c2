"""Configuration from environment variables, and the S3 key layout of a run."""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from . import broken
from .errors import UserError

T = TypeVar("T")

# Measured on a 2-core CPU (small model): about 21 ms per step, plus about 4 s of
# start-up (import torch, optimizer construction, loading features). 1000 steps
# make a train process of about 25 s; a checkpoint lands about every 2 s.
DEFAULT_TRAIN_STEPS = 1000
DEFAULT_CHECKPOINT_EVERY = 100
DEFAULT_DIGEST_EVERY = 50
# The training lease (lease.py): a lease not renewed for this long (by the S3
# server's clock) is stale; an attempt gives up waiting for it after the timeout.
DEFAULT_LEASE_STALE_SECONDS = 4.0
MIN_LEASE_STALE_SECONDS = 3.0  # renewals every 1 s, S3 timestamps in whole seconds, and a safety margin
DEFAULT_LEASE_TIMEOUT_SECONDS = 120.0
# validate waits this long for the day's last raw parts to land (a sensor) before failing the run.
DEFAULT_VALIDATE_WAIT_SECONDS = 60.0


@dataclass(frozen=True)
class Config:
    """Everything a step needs to know, validated once at start."""

    pipeline: str
    run_id: str
    date: str  # partition date, YYYY-MM-DD
    kind: str  # "daily" or "backfill"
    seed: int
    s3_endpoint_url: str
    s3_bucket: str
    train_steps: int
    checkpoint_every: int
    model_size: str  # "small" or "large"
    device: str  # "auto", "cpu", "cuda", ...
    metrics_port: int | None
    metrics_linger_seconds: float
    run_started_at: float | None
    auc_gate: float
    broken: frozenset[str]
    lease_stale_seconds: float = DEFAULT_LEASE_STALE_SECONDS
    lease_timeout_seconds: float = DEFAULT_LEASE_TIMEOUT_SECONDS
    digest_every: int = DEFAULT_DIGEST_EVERY  # steps between digest_trail events
    lease_holder: str = ""  # who holds the training lease: POD_NAME, else <hostname>-<pid>
    validate_wait_seconds: float = DEFAULT_VALIDATE_WAIT_SECONDS  # the freshness sensor's timeout

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """Read and validate the configuration; raises ``UserError`` naming the variable."""
        env = os.environ if env is None else env

        def required(name: str, hint: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise UserError(f"environment variable {name} is not set; set it to {hint}")
            return value

        def parsed(name: str, default: str, parse: Callable[[str], T], hint: str) -> T:
            raw = env.get(name, "").strip() or default
            try:
                return parse(raw)
            except ValueError:
                raise UserError(f"environment variable {name}={raw!r} is invalid; set it to {hint}") from None

        date = required("PARTITION_DATE", "the partition date as YYYY-MM-DD")
        try:
            dt.date.fromisoformat(date)
        except ValueError:
            raise UserError(f"PARTITION_DATE={date!r} is not a date; set it as YYYY-MM-DD") from None
        kind = parsed("RUN_KIND", "daily", _choice("daily", "backfill"), "daily or backfill")
        train_steps = parsed("TRAIN_STEPS", str(DEFAULT_TRAIN_STEPS), _positive_int, "a positive integer")
        every = parsed("CHECKPOINT_EVERY", str(DEFAULT_CHECKPOINT_EVERY), _positive_int, "a positive integer")
        port = env.get("METRICS_PORT", "").strip()
        started = env.get("RUN_STARTED_AT", "").strip()
        return cls(
            pipeline=env.get("PIPELINE_NAME", "").strip() or "reference",
            run_id=required("RUN_ID", "a unique id of this pipeline run, e.g. daily-2024-01-01"),
            date=date,
            kind=kind,
            seed=parsed("SEED", "7", int, "an integer"),
            s3_endpoint_url=required("S3_ENDPOINT_URL", "the S3 endpoint, e.g. http://127.0.0.1:9000"),
            s3_bucket=required("S3_BUCKET", "the bucket that holds the pipeline's data"),
            train_steps=train_steps,
            checkpoint_every=every,
            model_size=parsed("MODEL_SIZE", "small", _choice("small", "large"), "small or large"),
            device=env.get("DEVICE", "").strip() or "auto",
            metrics_port=parsed("METRICS_PORT", port, int, "a TCP port number") if port else None,
            metrics_linger_seconds=parsed("METRICS_LINGER_SECONDS", "0", float, "a number of seconds"),
            run_started_at=parsed("RUN_STARTED_AT", started, float, "unix seconds") if started else None,
            auc_gate=parsed("AUC_GATE", "0.70", float, "a number between 0 and 1"),
            broken=broken.parse(env.get("PIPELINE_BROKEN", "")),
            lease_stale_seconds=parsed("LEASE_STALE_SECONDS", str(DEFAULT_LEASE_STALE_SECONDS),
                                       _at_least(MIN_LEASE_STALE_SECONDS),
                                       f"a number of seconds, at least {MIN_LEASE_STALE_SECONDS:g}"),
            lease_timeout_seconds=parsed("LEASE_TIMEOUT_SECONDS", str(DEFAULT_LEASE_TIMEOUT_SECONDS),
                                         _at_least(0.0), "a number of seconds"),
            digest_every=parsed("DIGEST_EVERY", str(DEFAULT_DIGEST_EVERY), _positive_int, "a positive integer"),
            lease_holder=env.get("POD_NAME", "").strip() or f"{socket.gethostname()}-{os.getpid()}",
            validate_wait_seconds=parsed("VALIDATE_WAIT_SECONDS", str(DEFAULT_VALIDATE_WAIT_SECONDS),
                                         _at_least(0.0), "a number of seconds"),
        )

    @property
    def run_prefix(self) -> str:
        """Prefix of everything this run owns (run-scoped outputs)."""
        return f"runs/{self.pipeline}/{self.date}/{self.run_id}"

    def raw_key(self, hour: int) -> str:
        return f"raw/{self.pipeline}/date={self.date}/hour={hour:02d}/part-0.npz"

    def feature_key(self, shard: int) -> str:
        # Keyed by date, not by run: backfills and the daily run share features.
        return f"features/{self.pipeline}/date={self.date}/entity_shard={shard:02d}.npz"

    def checkpoint_dir(self, step: int) -> str:
        return f"{self.run_prefix}/checkpoints/step-{step:06d}"

    @property
    def lease_key(self) -> str:
        """The training lease of the run, next to its checkpoints (see lease.py)."""
        return f"{self.run_prefix}/train.lease"

    @property
    def data_version(self) -> str:
        """The version of the raw data a run reads: it is a pure function of (seed, date, hour)."""
        return f"seed-{self.seed}"

    @property
    def model_key(self) -> str:
        return f"{self.run_prefix}/model/model.pt"

    @property
    def registry_prefix(self) -> str:
        return f"registry/{self.pipeline}"


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError(raw)
    return value


def _at_least(minimum: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        value = float(raw)
        if not value >= minimum:  # also refuses nan
            raise ValueError(raw)
        return value

    return parse


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in allowed:
            raise ValueError(raw)
        return raw

    return parse
