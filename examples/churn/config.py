"""What a step of the churn pipeline reads from its environment, and where it keeps things in S3.

The harness (or any orchestrator) sets the variables; see README.md. A missing or malformed
variable stops the step with one line naming it (exit 2).
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
from dataclasses import dataclass
from typing import NoReturn

DEFAULT_TRAIN_STEPS = 1000
DEFAULT_CHECKPOINT_EVERY = 100
DEFAULT_DIGEST_EVERY = 50
DEFAULT_LEARNING_RATE = 0.003
EXIT_USAGE = 2


class UsageError(Exception):
    """The step was started with an environment it cannot work with."""


def die(message: str, code: int = EXIT_USAGE) -> NoReturn:
    print(f"churn: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def _require(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise UsageError(f"{name} is not set; the orchestrator must set it (see examples/churn/README.md)")
    return value


def _int(name: str, default: int, *, minimum: int = 1) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise UsageError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise UsageError(f"{name}={value} must be at least {minimum}")
    return value


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        raise UsageError(f"{name}={raw!r} is not a number") from None


@dataclass(frozen=True, kw_only=True)
class Config:
    """One step process's view of its run."""

    pipeline: str
    run_id: str
    date: str
    seed: int
    kind: str
    run_started_at: float | None
    bucket: str
    endpoint_url: str | None
    train_steps: int
    checkpoint_every: int
    digest_every: int
    learning_rate: float
    device: str
    holder: str  # who this process is, for the training lock: the pod, or host and pid outside Kubernetes
    scratch_dir: str  # the pod's own disk ($TMPDIR)
    careless: bool  # CARELESS=1: the careless variant (careless/pipeline.yaml)

    @staticmethod
    def from_env() -> Config:
        """Raises ``UsageError`` naming the first bad variable."""
        started = _float("RUN_STARTED_AT", 0.0)
        return Config(
            pipeline=os.environ.get("PIPELINE_NAME", "").strip() or "churn",
            run_id=_require("RUN_ID"),
            date=_require("PARTITION_DATE"),
            seed=_int("SEED", 7, minimum=0),
            kind=os.environ.get("RUN_KIND", "").strip() or "daily",
            run_started_at=started or None,
            bucket=_require("S3_BUCKET"),
            endpoint_url=os.environ.get("S3_ENDPOINT_URL", "").strip() or None,
            train_steps=_int("TRAIN_STEPS", DEFAULT_TRAIN_STEPS),
            checkpoint_every=_int("CHECKPOINT_EVERY", DEFAULT_CHECKPOINT_EVERY),
            digest_every=_int("DIGEST_EVERY", DEFAULT_DIGEST_EVERY),
            learning_rate=_float("LR", DEFAULT_LEARNING_RATE),
            device=os.environ.get("DEVICE", "").strip() or "cpu",
            holder=os.environ.get("POD_NAME", "").strip() or f"{socket.gethostname()}-{os.getpid()}",
            scratch_dir=tempfile.gettempdir(),
            careless=os.environ.get("CARELESS", "").strip() == "1",
        )


@dataclass(frozen=True)
class Keys:
    """The S3 key layout (declared to the harness in pipeline.yaml's ``artifacts``).

    Everything lives under the pipeline's name, so pipelines can share a bucket. Features belong to
    (date, seed), everything else to the run id.
    """

    config: Config

    @property
    def _root(self) -> str:
        return self.config.pipeline

    @property
    def _run(self) -> str:
        return f"{self._root}/runs/{self.config.run_id}"

    def features(self, split: str) -> str:
        c = self.config
        return f"{self._root}/features/date={c.date}/seed={c.seed}/{split}.pt"

    def checkpoint_prefix(self) -> str:
        return f"{self._run}/checkpoints/"

    def checkpoint_state(self, step: int) -> str:
        return f"{self.checkpoint_prefix()}step-{step:08d}/state.pt"

    def checkpoint_manifest(self, step: int) -> str:
        return f"{self.checkpoint_prefix()}step-{step:08d}/manifest.json"

    def train_lock(self) -> str:
        return f"{self._run}/train.lock"

    def trained_weights(self) -> str:
        return f"{self._run}/weights.pt"

    def evaluation(self) -> str:
        return f"{self._run}/evaluation.json"

    def model(self) -> str:
        return f"{self._root}/models/{self.config.run_id}/model.pt"

    def serving_model(self) -> str:
        """CARELESS: the one path the serving side loads, which every publish overwrites."""
        return f"{self._root}/models/current/model.pt"

    def registry_prefix(self) -> str:
        return f"{self._root}/registry/versions/"

    def registry_version(self, version: int) -> str:
        return f"{self.registry_prefix()}{version:06d}.json"
