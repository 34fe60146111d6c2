"""validate: the freshness gate, all 24 hourly parts of the day must have landed."""

from __future__ import annotations

import json
import time

from .. import data
from ..errors import GateFailed
from .context import Context


def run(ctx: Context) -> None:
    """Write ``<run>/validate.json`` if the day is complete; raise ``GateFailed`` if not."""
    c = ctx.config
    key = f"{c.run_prefix}/validate.json"
    if ctx.store.exists(key):
        ctx.skip("validation already passed")
        return
    existing = set(ctx.store.list_keys(f"raw/{c.pipeline}/date={c.date}/"))
    missing = [h for h in range(data.HOURS) if c.raw_key(h) not in existing]
    if missing:
        hours = ", ".join(f"{h:02d}" for h in missing)
        raise GateFailed(
            f"freshness check failed: date {c.date} lacks raw hour(s) {hours} "
            f"under raw/{c.pipeline}/date={c.date}/; run ingest for that date first"
        )
    report = {"date": c.date, "hours": data.HOURS, "checked_at": time.time()}
    ctx.store.put_if_absent(key, json.dumps(report).encode())
