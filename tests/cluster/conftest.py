"""Fixtures for the cluster tests: an undo log in tmp, a thread-safe event collector."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.cluster.process import ProcessCluster
from harness.history.events import Event
from harness.undo import UndoLog


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
    """A pod command running ``code`` in this interpreter."""
    return (sys.executable, "-c", code)


@pytest.fixture
def undo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> UndoLog:
    monkeypatch.setenv("HARNESS_STATE_DIR", str(tmp_path / "state"))
    return UndoLog(tmp_path / "state" / "undo")


@pytest.fixture
def collector() -> Collector:
    return Collector()


@pytest.fixture
def make_cluster(tmp_path: Path, undo: UndoLog) -> Iterator[Callable[..., ProcessCluster]]:
    made: list[ProcessCluster] = []

    def make(**kwargs: object) -> ProcessCluster:
        kwargs.setdefault("nodes", {"node-a": 1, "node-b": 1})
        c = ProcessCluster(workdir=tmp_path / f"cluster{len(made)}", undo=undo, **kwargs)  # type: ignore[arg-type]
        made.append(c)
        return c

    yield make
    for c in made:
        c.close(grace_period_seconds=0)
    assert undo.pending() == [], "every pod process must be reaped and its undo record removed"


def wait_until(predicate: Callable[[], bool], *, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def helpers() -> object:
    class H:
        Collector = Collector
        py = staticmethod(py)
        wait_until = staticmethod(wait_until)

    return H
