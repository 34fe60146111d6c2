"""``summary.json`` of a night: exact round trip, one-line errors for bad files.

:func:`night` is the summary factory the other game-day tests build their result folders with.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.gameday.model import Badput, NightFigures, NightSummary, RunVerdict
from harness.gameday.summary_file import read_summary, summary_text, write_summary

DAY = 86400.0
T0 = 1_790_000_000.0  # 2026-09-21, a fixed epoch so the nights' names and times agree


def night(day: int, *, status: str = "passed", score: float = 90.0, goodput: float = 0.8,
          mttr_p95: float | None = 30.0, steps_lost: int = 10, commit: str = "0123abcd",
          name: str | None = None) -> NightSummary:
    """A night started ``day`` days after T0, named after its day unless ``name`` is given."""
    started = T0 + day * DAY
    runs = (
        RunVerdict(index=1, run_id=f"gd-{day}-r1", date="2026-11-21", folder="runs/r1", status="completed",
                   score=100.0, checks=(("resume-from-checkpoint", "pass", ("restored step 40", "lost 7")),
                                        ("steady-state", "pass", ()))),
        RunVerdict(index=2, run_id=f"gd-{day}-r2", date="2026-11-22", folder="runs/r2", status="failed",
                   score=50.0, checks=(("resume-from-checkpoint", "fail", ("no checkpoint",)),)),
    )
    figures = NightFigures(
        runs_completed=1, runs_failed=1, faults={"pod-delete": 2, "node-drain": 1}, elapsed_seconds=3600.0,
        productive_seconds=3600.0 * goodput, goodput=goodput,
        badput=Badput(startup=12.5, checkpoint_save=3.25, lost_progress=0.1 + 0.2, other=1 / 3),
        steps_lost=steps_lost, mttr_p50=None if mttr_p95 is None else mttr_p95 / 2, mttr_p95=mttr_p95,
        mttr_max=mttr_p95, unrecovered=0)
    return NightSummary(
        night=name or f"night-{day:03d}", status=status, seed=1000 + day, schedule_file="schedule.json",
        gameday_file="default", commit=commit, cluster="embedded", pipeline="reference", started_at=started,
        ended_at=started + 3600.0, duration_seconds=3600.0, score=score, score_formula="100 * (1 + 0.5) / 2",
        min_score=70.0, figures=figures, runs=runs)


def test_a_summary_reads_back_equal_with_tuples(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    summary = night(3)
    write_summary(summary, path)
    back = read_summary(path)
    assert back == summary
    assert isinstance(back.runs, tuple) and isinstance(back.runs[0].checks[0], tuple)
    assert back.runs[0].checks[0][2] == ("restored step 40", "lost 7")
    assert back.figures.badput.other == 1 / 3 and back.figures.badput.lost_progress == 0.1 + 0.2
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temporary file left behind


def test_the_file_is_sorted_indented_json_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    write_summary(night(1, mttr_p95=None), path)
    text = path.read_text()
    assert text == summary_text(night(1, mttr_p95=None)) and text.endswith("}\n")
    assert text.startswith('{\n "cluster": "embedded",\n "commit"')
    doc = json.loads(text)
    assert doc["schema_version"] == 1 and doc["figures"]["mttr_p95"] is None
    assert read_summary(path).figures.mttr_p95 is None


def _edit(doc: dict[str, object], dotted: str, value: object) -> None:
    *parents, last = dotted.split(".")
    target: object = doc
    for key in parents:
        assert isinstance(target, dict)
        target = target[key]
    assert isinstance(target, dict)
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value


_DELETE = object()


@pytest.mark.parametrize(("field", "value", "message"), [
    ("figures.goodput", _DELETE, "figures.goodput is missing"),
    ("seed", "7", "seed is '7', not an integer"),
    ("seed", True, "seed is True, not an integer"),
    ("score", None, "score is null, not a number"),
    ("figures", [], "figures is a list, not an object"),
    ("runs", {}, "runs is a dict, not a list"),
    ("status", "cancelled", "status is 'cancelled', not one of passed, failed, interrupted"),
    ("schema_version", 2, "schema_version is 2; this harness reads 1"),
    ("figures.faults", {"pod-delete": 1.5}, "figures.faults.pod-delete is 1.5, not an integer"),
])
def test_a_malformed_summary_names_the_file_and_the_field(tmp_path: Path, field: str, value: object,
                                                          message: str) -> None:
    path = tmp_path / "summary.json"
    write_summary(night(1), path)
    doc = json.loads(path.read_text())
    _edit(doc, field, value)
    path.write_text(json.dumps(doc))
    with pytest.raises(HarnessError) as caught:
        read_summary(path)
    text = str(caught.value)
    assert str(path) in text and message in text and "\n" not in text


def test_a_malformed_check_names_its_position(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    write_summary(night(1), path)
    doc = json.loads(path.read_text())
    doc["runs"][1]["checks"][0] = ["resume-from-checkpoint", "fail"]
    path.write_text(json.dumps(doc))
    with pytest.raises(HarnessError, match=r"runs\[1\]\.checks\[0\] has 2 elements, not 3"):
        read_summary(path)


@pytest.mark.parametrize(("content", "message"), [
    (None, "does not exist"),
    ("{not json", "is not JSON"),
    ("[1, 2]", "the document is a list, not an object"),
    (b"\xff\xfe{", "cannot be read"),
])
def test_a_missing_or_unparsable_file_is_a_harness_error(tmp_path: Path, content: str | bytes | None,
                                                         message: str) -> None:
    path = tmp_path / "night" / "summary.json"
    path.parent.mkdir()
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(HarnessError) as caught:
        read_summary(path)
    assert str(path) in str(caught.value) and message in str(caught.value)
    assert "\n" not in str(caught.value)
