"""Crash points: named places inside a step where a crash is most likely to leave damage behind.

A pipeline calls :func:`crash_point` between the parts of a multi-part write (between a checkpoint's state and
its manifest, between a registry version and its run record, between two shards). Normally it does nothing.
The harness's crash-point sweep arms some occurrences for a run through two environment variables:
``MLCHAOS_CRASH_POINTS`` (comma-separated ``<point>#<occurrence>``, for example
``features.between-shards#5``) and ``MLCHAOS_CRASH_PAUSE_SECONDS``. At an armed occurrence the process prints
a ``crash_point`` event and holds the calling thread for the pause, so the harness, which reads the event,
kills the pod (SIGKILL, or SIGTERM with a grace period, through the cluster as Kubernetes would) while the
write is half done. The process never kills itself: the kill comes from outside, as a crash does.

Occurrences are counted per process and point: occurrence 3 of ``features.between-shards`` is the third
shard boundary this process reached. A retried process counts from 1 again and holds again, and the harness,
which kills each planned occurrence once, lets it pass.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter

from . import events

POINTS_ENV = "MLCHAOS_CRASH_POINTS"
PAUSE_ENV = "MLCHAOS_CRASH_PAUSE_SECONDS"
DEFAULT_PAUSE_SECONDS = 3.0

_counts: Counter[str] = Counter()
_lock = threading.Lock()


def armed() -> frozenset[str]:
    """The armed ``<point>#<occurrence>`` names of this process (empty: crash points do nothing)."""
    return frozenset(p.strip() for p in os.environ.get(POINTS_ENV, "").split(",") if p.strip())


def pause_seconds() -> float:
    """How long an armed occurrence holds (the default when unset or not a positive number)."""
    try:
        value = float(os.environ.get(PAUSE_ENV, "") or DEFAULT_PAUSE_SECONDS)
    except ValueError:
        return DEFAULT_PAUSE_SECONDS
    return value if value > 0 else DEFAULT_PAUSE_SECONDS


def crash_point(point: str, *, run_id: str) -> None:
    """Mark crash point ``point``; at an armed occurrence print the event and hold for the pause."""
    targets = armed()
    if not targets:
        return
    with _lock:
        _counts[point] += 1
        occurrence = _counts[point]
    if f"{point}#{occurrence}" not in targets:
        return
    pause = pause_seconds()
    events.crash_point(run_id=run_id, point=point, occurrence=occurrence, pause_seconds=pause)
    time.sleep(pause)
