"""The trend gate across nights, its page and its command."""

from __future__ import annotations

import html
from pathlib import Path

import boto3
import pytest

from harness.errors import HarnessError
from harness.gameday.model import NightSummary
from harness.gameday.results import S3Results
from harness.gameday.trend import TrendThresholds, TrendVerdict, judge_trend, trend_main, write_trend_html
from tests.gameday.test_results import BUCKET, aws_env, night_folder, s3  # noqa: F401 (fixtures used by name)
from tests.gameday.test_summary_file import night

DEFAULT = TrendThresholds()
_SCORES = (89.0, 91.0, 90.0, 88.0, 92.0, 90.0, 90.5)
_GOODPUTS = (0.80, 0.82, 0.79, 0.81, 0.80, 0.78, 0.80)
_MTTRS = (30.0, 28.0, 35.0, 31.0, 29.0, 30.0, 32.0)
_STEPS = (10, 12, 8, 10, 11, 9, 10)


def steady(days: int = 7) -> list[NightSummary]:
    """``days`` passed nights around score 90, goodput 0.80, MTTR p95 30 s and 10 steps lost (the medians)."""
    return [night(d, score=_SCORES[d % 7], goodput=_GOODPUTS[d % 7], mttr_p95=_MTTRS[d % 7], steps_lost=_STEPS[d % 7])
            for d in range(days)]


def line(verdict: TrendVerdict, figure: str) -> str:
    (found,) = [x for x in verdict.lines if x.startswith(f"{figure}:")]
    return found


# --- the gate ---------------------------------------------------------------------------


def test_a_steady_trend_passes() -> None:
    nights = [*steady(), night(7, score=86.0, goodput=0.76, mttr_p95=44.0, steps_lost=30)]  # all within limits
    verdict = judge_trend(nights, DEFAULT)
    assert verdict.passed and verdict.regressions == ()
    assert verdict.latest == "night-007"
    assert verdict.baseline_nights == tuple(f"night-{d:03d}" for d in range(7))
    assert line(verdict, "score") == "score: latest 86.0, median of 7 previous 90.0, fails below 85.0: ok"
    assert line(verdict, "goodput") == "goodput: latest 0.760, median of 7 previous 0.800, fails below 0.750: ok"
    assert line(verdict, "mttr_p95") == "mttr_p95: latest 44.0s, median of 7 previous 30.0s, fails above 45.0s: ok"
    assert line(verdict, "steps_lost") == "steps_lost: latest 30, median of 7 previous 10, fails above 30: ok"
    assert verdict.lines[0] == "status: latest night night-007 passed: ok"


@pytest.mark.parametrize(("figure", "latest"), [
    ("score", night(7, score=84.0)),
    ("goodput", night(7, goodput=0.74)),
    ("mttr_p95", night(7, mttr_p95=46.0)),
    ("steps_lost", night(7, steps_lost=31)),
])
def test_each_figure_regresses_on_its_own_and_is_named(figure: str, latest: NightSummary) -> None:
    verdict = judge_trend([*steady(), latest], DEFAULT)
    assert not verdict.passed
    assert verdict.regressions == (figure,)
    assert line(verdict, figure).endswith(": REGRESSED")
    others = [x for x in verdict.lines if not x.startswith(f"{figure}:") and not x.startswith("baseline:")]
    assert all(x.endswith(": ok") for x in others)


def test_a_failed_night_still_counts_and_a_small_steps_lost_rise_never_regresses() -> None:
    quiet = [night(d, steps_lost=0) for d in range(5)]
    assert judge_trend([*quiet, night(5, steps_lost=3)], DEFAULT).passed  # 0 -> 3 steps: under the floor
    assert judge_trend([*quiet, night(5, steps_lost=20)], DEFAULT).passed  # exactly the floor
    verdict = judge_trend([*quiet, night(5, steps_lost=21, status="failed")], DEFAULT)
    assert verdict.regressions == ("steps_lost",)
    assert line(verdict, "steps_lost") == "steps_lost: latest 21, median of 5 previous 0, fails above 20: REGRESSED"
    # A big baseline makes the relative rise the limit: 100 -> 150 passes, 151 fails.
    busy = [night(d, steps_lost=100) for d in range(5)]
    assert judge_trend([*busy, night(5, steps_lost=150)], DEFAULT).passed
    assert judge_trend([*busy, night(5, steps_lost=151)], DEFAULT).regressions == ("steps_lost",)


def test_an_interrupted_latest_night_never_passes() -> None:
    verdict = judge_trend([*steady(), night(7, status="interrupted")], DEFAULT)
    assert not verdict.passed and verdict.regressions == ("status",)
    assert verdict.lines[0] == ("status: latest night night-007 is interrupted: "
                                "an incomplete night never passes: REGRESSED")
    alone = judge_trend([night(0, status="interrupted")], DEFAULT)
    assert not alone.passed and alone.regressions == ("status",)


def test_interrupted_earlier_nights_are_left_out_of_the_baseline() -> None:
    # Interrupted nights' figures cover part of a night: left in, they would drag the median down to 10.
    nights = [night(d, score=90.0) for d in range(3)]
    nights += [night(d, score=10.0, goodput=0.1, steps_lost=900, status="interrupted") for d in range(3, 7)]
    nights.append(night(7, score=88.0))
    verdict = judge_trend(nights, TrendThresholds(nights=3))
    assert verdict.passed
    assert verdict.baseline_nights == ("night-000", "night-001", "night-002")
    assert "baseline: median of 3 previous night(s), night-000 to night-002; 4 incomplete night(s) left out" \
        in verdict.lines
    assert judge_trend([*nights[:-1], night(7, score=84.0)], TrendThresholds(nights=3)).regressions == ("score",)


def test_only_the_last_n_nights_make_the_baseline() -> None:
    old_bad = [night(d, score=100.0, mttr_p95=5.0) for d in range(4)]
    recent = [night(d, score=70.0, mttr_p95=60.0) for d in range(4, 7)]
    nights = [*old_bad, *recent, night(7, score=70.0, mttr_p95=60.0)]
    within = judge_trend(nights, TrendThresholds(nights=3))
    assert within.passed and within.baseline_nights == ("night-004", "night-005", "night-006")
    assert judge_trend(nights, TrendThresholds(nights=7)).regressions == ("score", "mttr_p95")


def test_the_first_night_passes_without_a_baseline() -> None:
    verdict = judge_trend([night(0)], DEFAULT)
    assert verdict.passed and verdict.baseline_nights == ()
    assert "baseline: none yet (no earlier passed or failed night)" in verdict.lines
    assert line(verdict, "score") == "score: latest 90.0; no baseline yet: ok"
    # Earlier nights that were all interrupted make no baseline either.
    assert judge_trend([night(0, status="interrupted"), night(1, score=5.0)], DEFAULT).passed


def test_no_recoveries_is_not_comparable_rather_than_a_regression() -> None:
    verdict = judge_trend([*steady(), night(7, mttr_p95=None)], DEFAULT)
    assert verdict.passed
    assert line(verdict, "mttr_p95") == ("mttr_p95: latest none, median 30.0s; not comparable "
                                         "(the latest night had recoveries to measure): ok")
    no_baseline = judge_trend([night(0, mttr_p95=None), night(1, mttr_p95=500.0)], DEFAULT)
    assert no_baseline.passed and "not comparable (no baseline night had recoveries" in line(no_baseline, "mttr_p95")


def test_the_gate_orders_nights_by_start_and_refuses_none() -> None:
    nights = [*steady(), night(7, score=50.0)]
    assert judge_trend(list(reversed(nights)), DEFAULT).latest == "night-007"
    with pytest.raises(HarnessError, match="run `mlchaos gameday` first"):
        judge_trend([], DEFAULT)


def test_thresholds_are_checked() -> None:
    with pytest.raises(HarnessError, match="at least 1 previous night"):
        TrendThresholds(nights=0)
    with pytest.raises(HarnessError, match="must not be negative: score_drop=-1, steps_lost_slack=-5"):
        TrendThresholds(score_drop=-1.0, steps_lost_slack=-5)


# --- the page ---------------------------------------------------------------------------


def test_the_page_shows_every_night_the_verdict_and_escapes_text(tmp_path: Path) -> None:
    nights = [*steady(5), night(5, status="interrupted", mttr_p95=None),
              night(6, score=60.0, commit="<script>alert(1)</script>")]
    verdict = judge_trend(nights, DEFAULT)
    page = tmp_path / "trend.html"
    write_trend_html(nights, verdict, page)
    text = page.read_text()
    assert all(n.night in text for n in nights)
    assert all(html.escape(x) in text for x in verdict.lines)
    assert "REGRESSED (score)" in text
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert text.count("data:image/png;base64,") == 4
    assert '<a href="night-006/report.html">night-006</a>' in text


# --- the command ------------------------------------------------------------------------


def test_trend_main_on_a_local_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "gamedays"
    for summary in steady(4):
        night_folder(root, summary)
    assert trend_main(str(root), thresholds=DEFAULT, out=None, endpoint_url=None) == 0
    printed = capsys.readouterr().out
    assert "score: latest" in printed and "trend: passed" in printed
    assert printed.rstrip().endswith(f"trend page: {root / 'trend.html'}")
    assert "night-003" in (root / "trend.html").read_text()

    night_folder(root, night(9, goodput=0.5))
    out = tmp_path / "pages" / "t.html"
    assert trend_main(str(root), thresholds=DEFAULT, out=out, endpoint_url=None) == 1
    assert "trend: REGRESSED (goodput)" in capsys.readouterr().out and out.exists()


def test_trend_main_without_nights_says_to_run_a_game_day(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="no game-day nights in .*; run `mlchaos gameday` first"):
        trend_main(str(tmp_path / "empty"), thresholds=DEFAULT, out=None, endpoint_url=None)


@pytest.mark.usefixtures("s3")
def test_trend_main_on_s3_writes_the_page_locally(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = S3Results(f"s3://{BUCKET}/nightly")
    for summary in steady(3):
        store.save(night_folder(tmp_path / "work", summary))
    monkeypatch.chdir(tmp_path)
    assert trend_main(f"s3://{BUCKET}/nightly", thresholds=DEFAULT, out=None, endpoint_url=None) == 0
    assert "night-002" in (tmp_path / "reports" / "gamedays-trend.html").read_text()
    assert boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="nightly/trend")["KeyCount"] == 0
