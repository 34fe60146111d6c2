"""Crash points do nothing unless armed, and hold only at the armed occurrence."""

from __future__ import annotations

import json
import time

import pytest

from mlchaos_probe import crash_points


@pytest.fixture(autouse=True)
def fresh_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crash_points, "_counts", crash_points.Counter())


def test_unarmed_crash_points_print_nothing_and_do_not_hold(monkeypatch, capsys):
    monkeypatch.delenv(crash_points.POINTS_ENV, raising=False)
    started = time.monotonic()
    for _ in range(3):
        crash_points.crash_point("features.between-shards", run_id="r")
    assert capsys.readouterr().out == ""
    assert time.monotonic() - started < 0.5


def test_only_the_armed_occurrence_prints_its_event_and_holds(monkeypatch, capsys):
    monkeypatch.setenv(crash_points.POINTS_ENV, "features.between-shards#2, ingest.between-parts#9")
    monkeypatch.setenv(crash_points.PAUSE_ENV, "0.3")
    slept: list[float] = []
    monkeypatch.setattr(crash_points.time, "sleep", slept.append)
    for _ in range(3):
        crash_points.crash_point("features.between-shards", run_id="r")
    crash_points.crash_point("ingest.between-parts", run_id="r")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["event"], e["point"], e["occurrence"], e["pause_seconds"]) for e in lines] == [
        ("crash_point", "features.between-shards", 2, 0.3)]
    assert slept == [0.3]


def test_a_bad_pause_falls_back_to_the_default(monkeypatch):
    monkeypatch.setenv(crash_points.PAUSE_ENV, "soon")
    assert crash_points.pause_seconds() == crash_points.DEFAULT_PAUSE_SECONDS
    monkeypatch.setenv(crash_points.PAUSE_ENV, "-1")
    assert crash_points.pause_seconds() == crash_points.DEFAULT_PAUSE_SECONDS

