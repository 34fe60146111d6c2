"""validate: the freshness sensor, all 24 hourly parts of the day must have landed.

Parts may land late (after the run started), so validate polls until every part is there, for at
most ``VALIDATE_WAIT_SECONDS``; then it fails the run with ``GateFailed`` naming the missing hours.
It never lets a partial day through, so features and training only ever see complete days.
"""

from __future__ import annotations

import json
import time

from mlchaos_probe import events as probe

from .. import broken, data
from ..errors import GateFailed
from .context import Context

POLL_SECONDS = 1.0  # how often the sensor looks again; a list of one prefix is cheap


def run(ctx: Context) -> None:
    """Write ``<run>/validate.json`` once the day is complete; raise ``GateFailed`` after the timeout."""
    c = ctx.config
    key = f"{c.run_prefix}/validate.json"
    if ctx.store.exists(key):
        ctx.skip("validation already passed")
        return
    started = time.monotonic()
    reported: list[int] | None = None
    while True:
        missing = _missing_hours(ctx)
        waited = time.monotonic() - started
        if not missing or broken.ACCEPT_PARTIAL_DAY in c.broken:
            break
        if missing != reported:  # one event per change, not per poll: the history stays small
            probe.inputs_waiting(run_id=c.run_id, step_name=ctx.step_name, date=c.date,
                                 missing=[c.raw_key(h) for h in missing], waited_seconds=round(waited, 3))
            reported = missing
        if waited >= c.validate_wait_seconds:
            hours = ", ".join(f"{h:02d}" for h in missing)
            raise GateFailed(
                f"freshness check failed: date {c.date} still lacks raw hour(s) {hours} under "
                f"raw/{c.pipeline}/date={c.date}/ after waiting {c.validate_wait_seconds:g} s "
                "(VALIDATE_WAIT_SECONDS); nothing was trained on the partial day. Land the missing hours "
                "(run ingest for that date) and rerun"
            )
        time.sleep(min(POLL_SECONDS, max(0.0, c.validate_wait_seconds - waited)))
    report = {"date": c.date, "hours": data.HOURS, "missing": missing, "checked_at": time.time()}
    ctx.store.put_if_absent(key, json.dumps(report).encode())


def _missing_hours(ctx: Context) -> list[int]:
    c = ctx.config
    existing = set(ctx.store.list_keys(f"raw/{c.pipeline}/date={c.date}/"))
    return [h for h in range(data.HOURS) if c.raw_key(h) not in existing]
