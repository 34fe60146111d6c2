"""Checkpoint corruption: a complete checkpoint's state object is damaged in S3, then training is killed.

The fault finds the newest complete checkpoint of the judged run (the newest ``MANIFEST.json`` under
``.../<run id>/checkpoints/``; or the manifest key it is given), reads the state object the manifest
names, and writes a damaged copy as a new version of that key: ``truncate`` cuts it at a seeded
offset in its middle half, ``flip`` XORs ``flips`` bytes at seeded offsets (``ctx.rng()``: a replay
with the same chaos seed damages the same bytes). Then, unless ``kill`` is false, it deletes the
training pod (SIGKILL by default), so the replacement attempt must restore while the damage is there.
The manifest is untouched: its sha256 and size are what a restore verifies the state against.

Healing deletes the damaged version (``DeleteObject`` with its ``VersionId``; see
:mod:`harness.services.object_versions`), so the pipeline's own bytes are current again and the
bucket's versions show only the pipeline's writes. The undo record is written before the damaged
version, so ``mlchaos heal`` does the same after a killed harness. Needs a versioned bucket (the
harness prepares one): without versions the original could not be put back as it was.

One fault per state object (group ``checkpoint:<state key>``) and per pod.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from functools import partial

from harness.errors import HarnessError
from harness.faults.pod_delete import running_pods
from harness.faults.role import FaultContext, FaultNotCleared, Heal, Target
from harness.services.object_versions import VersionedBucket, add_marked_version_record

__all__ = ["CHECKPOINT_CORRUPTION", "CheckpointCorruption", "CheckpointCorruptionParams", "MODES", "NAME",
           "corrupt"]

NAME = "checkpoint-corruption"
MODES = ("truncate", "flip")
MANIFEST = "MANIFEST.json"


@dataclass(frozen=True, kw_only=True)
class CheckpointCorruptionParams:
    """Damage the state object of ``manifest_key`` ("": the judged run's newest complete checkpoint) by
    ``mode``; then, when ``kill``, delete the training pod with ``grace_period_seconds`` (0: SIGKILL)."""

    mode: str = "flip"
    manifest_key: str = ""
    flips: int = 8
    kill: bool = True
    grace_period_seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.flips < 1:
            raise ValueError(f"flips must be >= 1, got {self.flips}")
        if not math.isfinite(self.grace_period_seconds) or self.grace_period_seconds < 0:
            raise ValueError(f"grace_period_seconds must be >= 0, got {self.grace_period_seconds}")
        if self.manifest_key and not self.manifest_key.endswith("/" + MANIFEST):
            raise ValueError(f"manifest_key must name a .../{MANIFEST}, got {self.manifest_key!r}")


def corrupt(body: bytes, *, mode: str, rng: random.Random, flips: int = 8) -> bytes:
    """``body`` damaged by ``mode``; always different from ``body`` (ValueError for an empty one)."""
    if not body:
        raise ValueError("cannot corrupt an empty object")
    if mode == "truncate":
        return body[: rng.randrange(len(body) // 4, max(len(body) // 4 + 1, 3 * len(body) // 4))]
    damaged = bytearray(body)
    for offset in rng.sample(range(len(body)), min(flips, len(body))):
        damaged[offset] ^= rng.randrange(1, 256)  # never 0: every chosen byte changes
    return bytes(damaged)


class CheckpointCorruption:
    name = NAME

    def plan(self, ctx: FaultContext, params: CheckpointCorruptionParams) -> Target:
        bucket = _bucket(ctx)
        manifest_key = params.manifest_key or _newest_manifest(bucket, ctx.run_labels.get("run", ""))
        state_key, step = _read_manifest(bucket, manifest_key)
        refusal = "" if bucket.versioned() else (
            f"{NAME} needs a versioned bucket to put the original back; {bucket.bucket} keeps no versions")
        pod, job, excludes = "", "", [f"checkpoint:{state_key}"]
        how = "the training pod left running"
        if params.kill:
            hit = running_pods(ctx.cluster, ctx.pod_labels({}), fault=NAME)[0]
            pod, job = hit.name, hit.job
            excludes.append(f"pod:{pod}")
            grace = params.grace_period_seconds
            how = f"then deleted pod {pod} ({'SIGKILL at once' if grace == 0 else f'grace {grace:g}s'})"
        what = "truncated" if params.mode == "truncate" else f"{params.flips} bytes flipped"
        return Target(
            name=manifest_key, pod=pod, job=job, excludes=tuple(excludes),
            grace_period_seconds=params.grace_period_seconds if params.kill else -1.0,
            detail=f"state {state_key} of the step-{step} checkpoint ({manifest_key}) {what}; {how}",
            undo=partial(add_marked_version_record, bucket=bucket, key=state_key, mark=_mark(ctx)),
            refusal=refusal)

    def inject(self, ctx: FaultContext, params: CheckpointCorruptionParams, target: Target) -> Heal:
        bucket = _bucket(ctx)
        state_key, _step = _read_manifest(bucket, target.name)
        original = bucket.read(state_key)
        damaged = corrupt(original.body, mode=params.mode, rng=ctx.rng(), flips=params.flips)

        def heal() -> str:
            removed = bucket.remove_marked(state_key, mark=_mark(ctx))
            if not removed:
                return f"{state_key}: no damaged version left; the pipeline's version {original.version_id} is current"
            return (f"removed damaged version(s) {', '.join(removed)} of {state_key}; the pipeline's version "
                    f"{original.version_id} ({len(original.body)} bytes) is current again")

        bucket.put_marked(state_key, damaged, mark=_mark(ctx))
        if params.kill:
            try:
                ctx.cluster.delete_pod(target.pod, grace_period_seconds=params.grace_period_seconds)
            except Exception as exc:
                try:
                    heal()
                except Exception as heal_error:
                    raise FaultNotCleared(f"{NAME}: deleting pod {target.pod} failed ({exc}) and removing the "
                                          f"damaged {state_key} failed too ({heal_error}); run `mlchaos heal`"
                                          ) from exc
                raise
        newest = _newest_manifest(bucket, _run_of(target.name))
        if newest != target.name:  # a later checkpoint completed meanwhile: the restore will not see the damage
            return _noting(heal, f"missed: {newest} completed after the damage, so a restore uses that one")
        return heal


CHECKPOINT_CORRUPTION = CheckpointCorruption()


def _noting(heal: Heal, note: str) -> Heal:
    return lambda: f"{heal()}; {note}"


def _mark(ctx: FaultContext) -> str:
    """What the damaged version is marked with: unique per fault (its seed), the same in plan and inject."""
    return f"{NAME}-{ctx.seed}"


def _bucket(ctx: FaultContext) -> VersionedBucket:
    if not ctx.s3_url or not ctx.bucket:
        raise HarnessError(f"{NAME} needs the object store: this environment gives faults no direct S3 endpoint "
                           "and bucket")
    return VersionedBucket(ctx.s3_url, ctx.bucket)


def _run_of(manifest_key: str) -> str:
    """The run id in ``.../<run id>/checkpoints/step-N/MANIFEST.json``."""
    parts = manifest_key.split("/")
    return parts[-4] if len(parts) >= 4 else ""


def _newest_manifest(bucket: VersionedBucket, run_id: str) -> str:
    """The newest complete checkpoint of ``run_id`` (zero-padded steps sort by step)."""
    if not run_id:
        raise HarnessError(f"{NAME}: no run to corrupt a checkpoint of (the fault context names no run)")
    manifests = [k for k in bucket.list_keys("runs/")
                 if k.endswith(f"/{MANIFEST}") and f"/{run_id}/checkpoints/" in k]
    if not manifests:
        raise HarnessError(f"{NAME}: run {run_id} has no complete checkpoint in {bucket.bucket} yet; "
                           "inject it once training has saved one")
    return max(manifests)


def _read_manifest(bucket: VersionedBucket, manifest_key: str) -> tuple[str, int]:
    """(state key, step) of the manifest at ``manifest_key``."""
    try:
        manifest = json.loads(bucket.read(manifest_key).body)
        return str(manifest["state_key"]), int(manifest["step"])
    except (ValueError, KeyError, TypeError) as error:
        raise HarnessError(f"{NAME}: {manifest_key} is not a checkpoint manifest ({error})") from None
