"""The backfill storm: a backfill of a historical range launched beside the experiment's runs.

Run ids are ``backfill-<date>``, the same for every backfill of that date, so two
overlapping storms race on the same logical artifacts, as re-triggered backfills
do in production. The experiment builds the backfill (its workload, settings and
store); heal stops launching dates and cancels the runs in flight. One storm per
name (group ``backfill:<name>``).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import HarnessError
from harness.faults.role import FaultContext, Heal, Target
from harness.workload.backfill import BackfillOptions

__all__ = ["BACKFILL_STORM", "BackfillStorm", "BackfillStormParams", "NAME"]

NAME = "concurrent-backfill"


@dataclass(frozen=True, kw_only=True)
class BackfillStormParams:
    """Run the pipeline for ``dates``, ``concurrency`` at a time, training ``train_steps`` steps each."""

    name: str
    dates: tuple[str, ...]
    concurrency: int = 2
    train_steps: int = 40
    publish_share: float = 0.0  # the share of dates let finish through evaluate and register when stopped

    def __post_init__(self) -> None:
        if not self.dates or self.concurrency < 1 or self.train_steps < 1:
            raise ValueError("a backfill needs at least one date, and concurrency and train_steps each >= 1")
        if not 0.0 <= self.publish_share <= 1.0:
            raise ValueError(f"publish_share must be between 0 and 1, got {self.publish_share}")


class BackfillStorm:
    name = NAME

    def plan(self, ctx: FaultContext, params: BackfillStormParams) -> Target:
        if ctx.launch_backfill is None:
            raise HarnessError("this experiment cannot launch backfills: its fault context has no backfill launcher")
        return Target(name=params.name, excludes=(f"backfill:{params.name}",),
                      detail=f"backfill of {len(params.dates)} dates ({params.dates[0]} to {params.dates[-1]}), "
                             f"{params.concurrency} at a time, {params.train_steps} training steps each"
                             + (f", {params.publish_share:.0%} of them let finish through register"
                                if params.publish_share else ""))

    def inject(self, ctx: FaultContext, params: BackfillStormParams, target: Target) -> Heal:
        assert ctx.launch_backfill is not None  # plan checked it
        backfill = ctx.launch_backfill(name=params.name, dates=params.dates, concurrency=params.concurrency,
                                       train_steps=params.train_steps)
        if params.publish_share:
            backfill.configure(BackfillOptions(publish_share=params.publish_share))
        backfill.start()

        def heal() -> str:
            backfill.cancel()  # idempotent: a cancelled backfill launches nothing more
            done = backfill.outcomes()
            return f"stopped; {sum(o.succeeded for o in done)} of {len(params.dates)} dates completed"

        return heal


BACKFILL_STORM = BackfillStorm()
