"""Progress lines while Chaos Toolkit runs an experiment: phase, activity, elapsed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from chaoslib.run import RunEventHandler


class ProgressReporter(RunEventHandler):  # type: ignore[misc]  # chaoslib is untyped
    """Sends ``[<experiment> +12.3s] <phase>`` lines to ``emit``."""

    def __init__(self, *, experiment: str, emit: Callable[[str], None]) -> None:
        self._experiment = experiment
        self._emit = emit
        self._t0 = time.monotonic()

    def _say(self, what: str) -> None:
        self._emit(f"[{self._experiment} +{time.monotonic() - self._t0:.1f}s] {what}")

    def start_hypothesis_before(self, experiment: Any) -> None:
        self._say("steady-state hypothesis (before)")

    def start_method(self, experiment: Any) -> None:
        self._say("method")

    def start_activity(self, activity: Any) -> None:
        self._say(f"{activity.get('type', 'activity')}: {activity.get('name', '?')}")

    def start_hypothesis_after(self, experiment: Any) -> None:
        self._say("steady-state hypothesis (after)")

    def start_rollbacks(self, experiment: Any) -> None:
        self._say("rollbacks")

    def finish(self, journal: Any) -> None:
        self._say(f"chaos toolkit finished: {journal.get('status')}, deviated={journal.get('deviated')}")
