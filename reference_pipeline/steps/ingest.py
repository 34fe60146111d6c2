"""ingest: land the day's 24 hourly raw parts (deterministic synthetic events)."""

from __future__ import annotations

from mlchaos_probe.crash_points import crash_point

from .. import data
from .context import Context


def run(ctx: Context) -> None:
    """Publish each missing part with a conditional PUT; a part already there is done."""
    c = ctx.config
    existing = set(ctx.store.list_keys(f"raw/{c.pipeline}/date={c.date}/"))
    missing = [h for h in range(data.HOURS) if c.raw_key(h) not in existing]
    if not missing:
        ctx.skip("all raw parts exist")
        return
    for hour in missing:
        key = c.raw_key(hour)
        # 412 means a concurrent run landed the same bytes first: fine, and not ours to report.
        if ctx.store.put_if_absent(key, data.to_npz(data.raw_part(c.seed, c.date, hour))):
            ctx.published("raw_part", key, f"raw/{c.date}/{hour:02d}")
        crash_point("ingest.between-parts", run_id=c.run_id)
