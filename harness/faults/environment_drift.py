"""Environment drift: the next attempt of the training step runs under another environment.

The fault re-images every node (``Cluster.set_image_env``: containers started from now on see
``IMAGE_DIGEST`` changed and ``TORCH_MATMUL_PRECISION`` set, as a retried pod that pulled a newer
``:latest`` would), then deletes the training pod with a grace period, so the attempt that wrote the
checkpoint ends and the Job's next attempt starts under the drifted environment. Every node, because
the next attempt may land on any of them.

Only the embedded cluster's process nodes can be re-imaged (their "image" env is what the node agent
supplies); on kind and existing clusters ``set_image_env`` raises a clear ``NodeControlUnsupported``
and nothing is touched: there a different image tag on the retried pod would carry the drift.
Heal restores every node's own image env (idempotent). The override lives in the embedded cluster's
work folder, which ``mlchaos heal`` removes with the cluster after a killed harness.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from harness.faults.pod_delete import running_pods
from harness.faults.role import FaultContext, Heal, Target

__all__ = ["ENVIRONMENT_DRIFT", "NAME", "EnvironmentDrift", "EnvironmentDriftParams"]

NAME = "environment-drift"
PRECISIONS = ("highest", "high", "medium")  # torch.set_float32_matmul_precision's values


@dataclass(frozen=True, kw_only=True)
class EnvironmentDriftParams:
    """Re-image the nodes with ``image_digest`` and ``matmul_precision``, then delete the first running pod
    ``labels`` picks (empty: the training step's) with ``grace_period_seconds``."""

    labels: Mapping[str, str] = field(default_factory=dict)
    image_digest: str = "sha256:" + "d" * 64
    matmul_precision: str = "medium"
    grace_period_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.matmul_precision not in PRECISIONS:
            raise ValueError(f"matmul_precision must be one of {', '.join(PRECISIONS)}, got {self.matmul_precision!r}")
        if not self.image_digest:
            raise ValueError("image_digest must not be empty")
        if not math.isfinite(self.grace_period_seconds) or self.grace_period_seconds < 0:
            raise ValueError(f"grace_period_seconds must be >= 0, got {self.grace_period_seconds}")

    @property
    def env(self) -> dict[str, str]:
        return {"IMAGE_DIGEST": self.image_digest, "TORCH_MATMUL_PRECISION": self.matmul_precision}


class EnvironmentDrift:
    name = NAME

    def plan(self, ctx: FaultContext, params: EnvironmentDriftParams) -> Target:
        pod = running_pods(ctx.cluster, ctx.pod_labels(params.labels), fault=NAME)[0]
        drift = ", ".join(f"{k}={v}" for k, v in params.env.items())
        return Target(name=pod.name, pod=pod.name, job=pod.job, excludes=("image-env", f"pod:{pod.name}"),
                      grace_period_seconds=params.grace_period_seconds,
                      detail=f"re-imaged every node ({drift}) and deleted {pod.name} on {pod.node}: "
                             "its next attempt runs under the drifted environment")

    def inject(self, ctx: FaultContext, params: EnvironmentDriftParams, target: Target) -> Heal:
        cluster = ctx.cluster
        nodes = [n.name for n in cluster.nodes()]

        def heal() -> str:
            for node in nodes:
                cluster.set_image_env(node, None)  # idempotent: no override is fine
            return f"restored the image env of {', '.join(nodes)}"

        try:
            for node in nodes:
                cluster.set_image_env(node, params.env)
            final = cluster.delete_pod(target.name, grace_period_seconds=params.grace_period_seconds)
        except BaseException:
            heal()
            raise
        return lambda: f"{heal()}; pod {final.name} had ended with exit code {final.exit_code}"


ENVIRONMENT_DRIFT = EnvironmentDrift()
