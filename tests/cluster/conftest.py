"""Helpers for tests that run pods: an event collector, a container command, a wait.

The fixtures (``embedded``, ``cluster``, ``collector``, ``undo``) are in ``tests/conftest.py``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from harness.history.events import Event


class Collector:
    """An EventSink that keeps events and lets a test wait for one."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._cond = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[Event], bool], *, timeout: float = 30.0) -> Event:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for e in self.events:
                    if predicate(e):
                        return e
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no matching event within {timeout} s; got {self.events}")
                self._cond.wait(remaining)

    def of(self, cls: type[Event]) -> list[Event]:
        with self._cond:
            return [e for e in self.events if isinstance(e, cls)]


def py(code: str) -> tuple[str, ...]:
    """A container command running ``code`` in the pipeline image's Python."""
    return ("python", "-c", code)


def wait_until(predicate: Callable[[], bool], *, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


