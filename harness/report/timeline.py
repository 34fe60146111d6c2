"""The timeline plot of one experiment: training step over time, faults shaded."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot

import matplotlib.pyplot as plt

from harness.checks.interruptions import FaultOutcome
from harness.history.clock import HarnessClock
from harness.history.events import CheckpointSaved, Event, PodStarted, TrainStep, of_type


def timeline_png(events: Sequence[Event], faults: Sequence[FaultOutcome], *, run_id: str, title: str) -> bytes:
    """A PNG: one line per training attempt, checkpoints as dots, fault windows
    shaded, new attempts marked, recovery times annotated."""
    evs = list(events)
    # The main run and the experiment's other named runs (for example an idle-cluster run to compare with).
    steps = [e for e in of_type(evs, TrainStep) if e.run_id == run_id or e.run_id.startswith(f"{run_id}-")]
    clock = HarnessClock(evs)  # every source on the harness's clock, as the fault windows are
    t0 = min((clock.time(e) for e in evs), default=0.0)
    fig, ax = plt.subplots(figsize=(10, 3.6), dpi=100)
    for pod in dict.fromkeys(e.pod for e in steps):
        mine = [e for e in steps if e.pod == pod]
        ax.plot([clock.time(e) - t0 for e in mine], [e.step for e in mine], lw=1.6, label=pod)
    saved = [e for e in of_type(evs, CheckpointSaved) if e.run_id == run_id or e.run_id.startswith(f"{run_id}-")]
    ax.scatter([clock.time(e) - t0 for e in saved], [e.step for e in saved], s=14, c="black", zorder=3,
               label="checkpoint")
    train_pods = {e.pod for e in steps}
    for e in of_type(evs, PodStarted):
        if e.pod in train_pods and e.attempt > 0:
            ax.axvline(e.ts - t0, color="grey", ls=":", lw=1)
    for f in faults:
        end = f.healed_at if f.healed_at is not None else f.injected_at
        ax.axvspan(f.injected_at - t0, max(end, f.injected_at + 0.2) - t0, color="red", alpha=0.25)
        label = f.fault if f.recovery_seconds is None else f"{f.fault}: recovered in {f.recovery_seconds:.1f}s"
        ax.annotate(label, (f.injected_at - t0, f.last_step_before or 0), xytext=(4, 8),
                    textcoords="offset points", fontsize=8, color="darkred")
    ax.set_xlabel("seconds since the experiment started")
    ax.set_ylabel("training step")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if steps:
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
