"""schedule.json: written canonically, read back exactly, and refused when it is not one."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.gameday.generators import draw_schedule
from harness.gameday.plan_file import load_gameday
from harness.gameday.schedule_file import read_schedule, schedule_text, write_schedule
from harness.workload.reference import reference_workload


def test_a_written_schedule_reads_back_equal_and_rewrites_to_the_same_bytes(tmp_path: Path) -> None:
    schedule = draw_schedule(load_gameday(None, workload=reference_workload()).plan, seed=5, duration_seconds=400)
    path = tmp_path / "night" / "schedule.json"
    write_schedule(schedule, path)
    again = read_schedule(path)
    assert again == schedule
    assert schedule_text(again) == path.read_text()
    assert not list(path.parent.glob(".*tmp"))


@pytest.mark.parametrize(("text", "message"), [
    ("{", "not a readable schedule.json"),
    ('{"format": "something-else"}', "not a game-day schedule"),
    ('{"format": "mlchaos-gameday-schedule/1", "seed": 1}', "malformed schedule (KeyError"),
])
def test_a_file_that_is_not_a_schedule_is_refused_in_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "schedule.json"
    path.write_text(text)
    with pytest.raises(HarnessError) as raised:
        read_schedule(path)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_missing_schedule_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="no such schedule file"):
        read_schedule(tmp_path / "nope.json")


def test_a_schedule_with_the_added_kinds_replays(tmp_path: Path) -> None:
    """A team's own kinds (not in the default catalogue) survive the write and the replay's read."""
    gameday = tmp_path / "team.yaml"
    gameday.write_text(
        "constraints: {quiet_start_steps: 0, min_gap_steps: 20, max_faults_per_run: 6, max_active: 3}\n"
        "faults:\n"
        "  - {kind: spot-preemption, hold_steps: [30, 60], params: {notice_seconds: 15}}\n"
        "  - {kind: checkpoint-corruption, params: {mode: [flip, truncate]}}\n"
        "  - {kind: registry-race, hold_steps: [30, 60], params: {racers: 2}}\n")
    schedule = draw_schedule(load_gameday(gameday, workload=reference_workload()).plan, seed=3,
                             duration_seconds=300)
    assert {f.kind for r in schedule.runs for f in r.faults} == {"spot-preemption", "checkpoint-corruption",
                                                                 "registry-race"}
    path = tmp_path / "night" / "schedule.json"
    write_schedule(schedule, path)
    assert read_schedule(path) == schedule
    path.write_text(path.read_text().replace('"registry-race"', '"registry-stampede"'))
    with pytest.raises(HarnessError, match="unknown fault kind 'registry-stampede'"):
        read_schedule(path)
