"""The append-only JSONL history of one experiment run.

Writers append from any thread; lines are flushed at once so a crashed run
still leaves a readable history. Readers get typed events. Nothing is ever
rewritten or removed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from harness.errors import HarnessError
from harness.history.events import Event, from_json, to_json


class History:
    """An open history file that can be appended to and waited on."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._events: list[Event] = load(path) if path.exists() else []
        self._file = path.open("a", encoding="utf-8")
        self._changed = threading.Condition()
        self._interrupted = ""

    def append(self, event: Event) -> None:
        with self._changed:
            if self._file.closed:
                return  # late writers (log readers of killed pods) after close are dropped
            self._file.write(to_json(event) + "\n")
            self._file.flush()
            self._events.append(event)
            self._changed.notify_all()

    def events(self) -> list[Event]:
        """A snapshot of the events so far, in append order."""
        with self._changed:
            return list(self._events)

    def wait_for(self, predicate: Callable[[Event], bool], *, timeout: float, what: str) -> Event:
        """Block until an event satisfying ``predicate`` is in the history; return it.

        Raises ``HarnessError`` naming ``what`` after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                if self._interrupted:
                    raise HarnessError(f"stopped waiting for {what}: {self._interrupted}")
                for event in self._events[seen:]:
                    if predicate(event):
                        return event
                seen = len(self._events)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise HarnessError(f"timed out after {timeout:g}s waiting for {what}")
                self._changed.wait(min(left, 0.5))

    def interrupt(self, reason: str) -> None:
        """Make every current and future :meth:`wait_for` raise at once (the run is being stopped)."""
        with self._changed:
            self._interrupted = reason
            self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self._file.close()
            self._changed.notify_all()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load(path: Path) -> list[Event]:
    """Read a history file; lines that are not events are skipped."""
    events: list[Event] = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            event = from_json(line)
            if event is not None:
                events.append(event)
    return events
