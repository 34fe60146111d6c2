"""The timeline plot of one experiment: training step over time, faults shaded."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot

import matplotlib.pyplot as plt

from harness.checks.interruptions import FaultOutcome
from harness.history.clock import HarnessClock
from harness.history.events import (
    AliasMoved,
    CheckpointRejected,
    CheckpointSaved,
    CrashPointReached,
    EnvironmentRefused,
    Event,
    InputsWaiting,
    PodStarted,
    TrainStep,
    of_type,
)

# The ML failure modes' own moments, on the time axis (they have no training step): event type, legend, marker.
_TIME_MARKS: tuple[tuple[type[CrashPointReached | InputsWaiting | EnvironmentRefused | AliasMoved], str, str, str],
                   ...] = (
    (CrashPointReached, "held at a crash point", "v", "purple"),
    (InputsWaiting, "inputs incomplete, waiting", "|", "darkorange"),
    (EnvironmentRefused, "resume refused: environment changed", "X", "brown"),
    (AliasMoved, "latest alias moved", "^", "green"),
)


def time_marks(events: Sequence[Event], *, run_id: str) -> dict[tuple[str, str, str], list[float]]:
    """The failure modes' moments of ``run_id`` (and its named sibling runs) on the harness's clock, by
    (legend, marker, colour); kinds without one are left out."""
    evs = list(events)
    clock = HarnessClock(evs)
    marks: dict[tuple[str, str, str], list[float]] = {}
    for kind, label, marker, color in _TIME_MARKS:
        times = [clock.time(e) for e in of_type(evs, kind)
                 if e.run_id == run_id or e.run_id.startswith(f"{run_id}-")]
        if times:
            marks[(label, marker, color)] = times
    return marks


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
    rejected = [e for e in of_type(evs, CheckpointRejected) if e.run_id == run_id]
    if rejected:  # a restore refused a corrupted checkpoint: mark it where that checkpoint was
        ax.scatter([clock.time(e) - t0 for e in rejected], [e.step for e in rejected], s=40, marker="x",
                   c="red", zorder=4, label="checkpoint rejected")
    for (label, marker, color), times in time_marks(evs, run_id=run_id).items():
        ax.scatter([t - t0 for t in times], [0] * len(times), s=36, marker=marker, c=color, zorder=4,
                   label=label, clip_on=False)
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
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
