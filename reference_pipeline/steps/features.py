"""features: per-entity-shard feature partitions of the day, shared by every run of that date."""

from __future__ import annotations

import numpy as np

from .. import data
from ..errors import UserError
from .context import Context


def run(ctx: Context) -> None:
    """Write each missing shard with a conditional PUT.

    Shards are keyed by (date, entity shard), not by run, and are a pure function
    of the raw data, so a concurrent backfill writing the same shard is harmless:
    one PUT wins, the other gets 412, and there is never a second copy.
    """
    c = ctx.config
    existing = set(ctx.store.list_keys(f"features/{c.pipeline}/date={c.date}/"))
    missing = [s for s in range(data.SHARDS) if c.feature_key(s) not in existing]
    if not missing:
        ctx.skip("all feature shards exist")
        return
    parts = []
    for hour in range(data.HOURS):
        obj = ctx.store.get(c.raw_key(hour))
        if obj is None:
            raise UserError(f"raw part {c.raw_key(hour)} is missing; run ingest and validate for {c.date} first")
        parts.append(data.from_npz(obj.body))
    shards = data.feature_shards(parts)
    for shard in missing:
        key = c.feature_key(shard)
        if ctx.store.put_if_absent(key, data.to_npz(shards[shard])):
            ctx.published("feature_partition", key, f"features/{c.date}/{shard:02d}")


def load(ctx: Context) -> list[dict[str, np.ndarray]]:
    """All shards of the day, in shard order (the order training and evaluation rely on)."""
    c = ctx.config
    shards = []
    for shard in range(data.SHARDS):
        obj = ctx.store.get(c.feature_key(shard))
        if obj is None:
            raise UserError(f"feature shard {c.feature_key(shard)} is missing; run features for {c.date} first")
        shards.append(data.from_npz(obj.body))
    return shards
