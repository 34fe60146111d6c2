"""What an experiment says about the pipeline it runs."""

from __future__ import annotations

from dataclasses import dataclass

STEPS: tuple[str, ...] = ("ingest", "validate", "features", "train", "evaluate", "register")
TRAINING_STEPS: tuple[str, ...] = ("ingest", "validate", "features", "train")


@dataclass(frozen=True, kw_only=True)
class PipelineSettings:
    """Parameters of the reference pipeline (its environment contract).

    ``None`` leaves the pipeline's own default. ``restart_policy`` is the Jobs'
    pod restart policy: ``OnFailure`` restarts a failed container in place at once
    (the kubelet's crash-loop backoff: 0 s, then 10 s doubling), ``Never`` makes the
    Job controller replace the pod after its own backoff (10 s doubling). A deleted
    or evicted pod is replaced at once under either.
    """

    pipeline: str = "reference"
    date: str = "2026-11-21"
    seed: int = 7
    train_steps: int | None = None
    checkpoint_every: int | None = None
    model_size: str = "small"
    broken: str = ""
    backoff_limit: int = 6
    restart_policy: str = "OnFailure"
    termination_grace_period_seconds: int = 30
    step_timeout_seconds: float = 600.0
    gpus: int = 0  # >0: the train step requests nvidia.com/gpu and trains with CUDA (DEVICE=cuda)

    def env(self) -> dict[str, str]:
        """The pipeline's environment variables for these settings."""
        env = {
            "PIPELINE_NAME": self.pipeline,
            "PARTITION_DATE": self.date,
            "SEED": str(self.seed),
            "MODEL_SIZE": self.model_size,
        }
        if self.train_steps is not None:
            env["TRAIN_STEPS"] = str(self.train_steps)
        if self.checkpoint_every is not None:
            env["CHECKPOINT_EVERY"] = str(self.checkpoint_every)
        if self.broken:
            env["PIPELINE_BROKEN"] = self.broken
        return env
