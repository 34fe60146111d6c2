"""``mlchaos gameday`` refuses bad input before anything starts, with one line that says what to fix."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from harness.cluster.options import ClusterOptions
from harness.errors import HarnessError
from harness.gameday import main as gameday
from harness.gameday.generators import draw_schedule
from harness.gameday.main import GameDayOptions, gameday_main, parse_duration
from harness.gameday.plan_file import load_gameday
from harness.gameday.schedule_file import write_schedule
from harness.workload.reference import reference_workload

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("20m", 1200), ("1h30m", 5400),
                                               ("1.5m", 90)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0s", "ten minutes", "5x", "m"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.fixture
def no_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(**_: object) -> None:
        raise AssertionError("the environment was started for bad input")

    monkeypatch.setattr(gameday, "open_environment", refuse)


def _options(tmp_path: Path, **changes: object) -> GameDayOptions:
    return replace(GameDayOptions(duration_seconds=60, seed=1, results=str(tmp_path / "results")), **changes)


def _refused(options: GameDayOptions, message: str, tmp_path: Path) -> None:
    with pytest.raises(HarnessError) as raised:
        gameday_main(options, progress=lambda _: None)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


@pytest.mark.usefixtures("no_cluster")
def test_a_missing_game_day_file(tmp_path: Path) -> None:
    _refused(_options(tmp_path, gameday_file=tmp_path / "absent.yaml"), "no such game-day file", tmp_path)


@pytest.mark.usefixtures("no_cluster")
def test_a_setting_the_pipeline_does_not_declare(tmp_path: Path) -> None:
    _refused(_options(tmp_path, settings=(("colour", "blue"),)), "does not accept setting(s) colour", tmp_path)


@pytest.mark.usefixtures("no_cluster")
def test_a_schedule_drawn_for_another_training_length(tmp_path: Path) -> None:
    plan = load_gameday(ROOT / "gamedays" / "short.yaml", workload=reference_workload()).plan
    path = tmp_path / "old" / "schedule.json"
    write_schedule(draw_schedule(plan, seed=2, duration_seconds=60), path)
    _refused(_options(tmp_path, replay=path), "drawn for a pipeline training 300 steps", tmp_path)


@pytest.mark.usefixtures("no_cluster")
def test_drains_on_a_cluster_that_does_not_allow_node_faults(tmp_path: Path) -> None:
    cluster = ClusterOptions(kind="existing", context="staging")
    _refused(_options(tmp_path, cluster=cluster, duration_seconds=1800), "not allowed on context staging", tmp_path)


@pytest.mark.usefixtures("no_cluster")
def test_spot_preemptions_on_a_cluster_that_does_not_allow_node_faults(tmp_path: Path) -> None:
    """A spot preemption taints, cordons and evicts as a drain does: refused there just the same."""
    spot = tmp_path / "spot.yaml"
    spot.write_text("constraints: {quiet_start_steps: 0}\n"
                    "faults: [{kind: spot-preemption, hold_steps: [60, 120], params: {notice_seconds: 15}}]\n")
    cluster = ClusterOptions(kind="existing", context="staging")
    _refused(_options(tmp_path, cluster=cluster, gameday_file=spot, duration_seconds=600),
             "use a game-day file without spot-preemption", tmp_path)


@pytest.mark.usefixtures("no_cluster")
def test_an_unreachable_results_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # an s3:// night is written under ./reports/gamedays first
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    options = _options(tmp_path, results="s3://nights/gamedays", s3_endpoint_url="http://127.0.0.1:9")
    with pytest.raises(HarnessError) as raised:
        gameday_main(options, progress=lambda _: None)
    assert "127.0.0.1:9" in str(raised.value) or "reach" in str(raised.value)
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "reports").exists()  # refused before the night's folder was written
