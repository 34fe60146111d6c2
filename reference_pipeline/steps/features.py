"""features: per-entity-shard feature partitions of the day, shared by every run of that date."""

from __future__ import annotations

import uuid

import numpy as np

from mlchaos_probe import events as probe
from mlchaos_probe.crash_points import crash_point

from .. import broken, data
from ..config import Config
from ..errors import UserError
from .context import Context


def run(ctx: Context) -> None:
    """Write each missing shard with a conditional PUT.

    Shards are keyed by (date, entity shard), not by run, and are a pure function
    of the raw data, so a concurrent backfill writing the same shard is harmless:
    one PUT wins, the other gets 412, and there is never a second copy.
    """
    c = ctx.config
    if broken.APPEND_FEATURES in c.broken:
        _append(ctx)
        return
    existing = set(ctx.store.list_keys(f"features/{c.pipeline}/date={c.date}/"))
    missing = [s for s in range(data.SHARDS) if c.feature_key(s) not in existing]
    if not missing:
        ctx.skip("all feature shards exist")
        return
    shards = data.feature_shards(_raw_parts(ctx))
    for shard in missing:
        key = c.feature_key(shard)
        if ctx.store.put_if_absent(key, data.to_npz(shards[shard])):
            ctx.published("feature_partition", key, f"features/{c.date}/{shard:02d}")
        crash_point("features.between-shards", run_id=c.run_id)


def _raw_parts(ctx: Context) -> list[dict[str, np.ndarray]]:
    """Every raw part of the day, reported as the run's ``raw`` inputs (``inputs_read``)."""
    c = ctx.config
    parts, read = [], []
    for hour in range(data.HOURS):
        obj = ctx.store.get(c.raw_key(hour))
        if obj is None:
            if broken.ACCEPT_PARTIAL_DAY in c.broken:
                continue  # the planted bug: build the day from whatever landed
            raise UserError(f"raw part {c.raw_key(hour)} is missing; run ingest and validate for {c.date} first")
        parts.append(data.from_npz(obj.body))
        read.append(c.raw_key(hour))
    if not parts:
        raise UserError(f"no raw part of {c.date} exists; run ingest for that date first")
    probe.inputs_read(run_id=c.run_id, step_name=ctx.step_name, role="raw", date=c.date,
                      data_version=c.data_version, keys=read)
    return parts


def _append(ctx: Context) -> None:
    """Broken variant ``append-features``: every run adds each shard as a new part object."""
    c = ctx.config
    shards = data.feature_shards(_raw_parts(ctx))
    for shard, arrays in enumerate(shards):
        key = f"{_shard_dir(c, shard)}part-{uuid.uuid4().hex}.npz"
        if ctx.store.put_if_absent(key, data.to_npz(arrays)):
            ctx.published("feature_partition", key, f"features/{c.date}/{shard:02d}")


def _shard_dir(c: Config, shard: int) -> str:
    return f"features/{c.pipeline}/date={c.date}/entity_shard={shard:02d}/"


def load(ctx: Context, *, role: str = "features") -> list[dict[str, np.ndarray]]:
    """All shards of the day, in shard order (the order training and evaluation rely on), reported as
    the step's ``role`` inputs (``inputs_read``: train reads "features", evaluate the "holdout")."""
    c = ctx.config
    if broken.APPEND_FEATURES in c.broken:
        probe.inputs_read(run_id=c.run_id, step_name=ctx.step_name, role=role, date=c.date,
                          data_version=c.data_version,
                          keys=[k for s in range(data.SHARDS) for k in ctx.store.list_keys(_shard_dir(c, s))])
        return [_load_parts(ctx, shard) for shard in range(data.SHARDS)]
    shards = []
    for shard in range(data.SHARDS):
        obj = ctx.store.get(c.feature_key(shard))
        if obj is None:
            raise UserError(f"feature shard {c.feature_key(shard)} is missing; run features for {c.date} first")
        shards.append(data.from_npz(obj.body))
    probe.inputs_read(run_id=c.run_id, step_name=ctx.step_name, role=role, date=c.date,
                      data_version=c.data_version, keys=[c.feature_key(s) for s in range(data.SHARDS)])
    return shards


def _load_parts(ctx: Context, shard: int) -> dict[str, np.ndarray]:
    """Broken variant ``append-features``: every part of the shard, concatenated (rows repeat)."""
    c = ctx.config
    keys = ctx.store.list_keys(_shard_dir(c, shard))
    if not keys:
        raise UserError(f"feature shard {_shard_dir(c, shard)} has no parts; run features for {c.date} first")
    parts = []
    for key in keys:
        obj = ctx.store.get(key)
        if obj is None:
            raise UserError(f"feature part {key} vanished while reading; rerun the step")
        parts.append(data.from_npz(obj.body))
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
