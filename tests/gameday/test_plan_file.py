"""Game-day files: what they set, and one-line errors for what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ExperimentError
from harness.gameday.model import HEAL_AT_END, ParamRange
from harness.gameday.plan_file import DEFAULT_TRAIN_STEPS, load_gameday
from harness.workload.reference import reference_workload

GOOD = """
pipeline: {train_steps: 300, checkpoint_every: 25, seed: 9}
workload: {dates: ["2026-11-20"], run_seconds: 40, fault_free_share: 0.25}
constraints: {min_gap_steps: 30, max_active: 1, quiet_start_steps: 10, max_faults_per_run: 2}
faults:
  - name: kill-while-registering
    kind: pod-delete
    steps: {register: 1, train: 2}
    params: {grace_period_seconds: [0, 30]}
    seconds: [0.2, 1.5]
  - kind: network-delay
    weight: 2
    hold_steps: end
    params: {latency_ms: {low: 100, high: 200, integer: true}, jitter_ms: 10}
min_score: 80
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gameday.yaml"
    path.write_text(text)
    return path


def test_a_file_sets_the_plan_the_runs_and_the_gate(tmp_path: Path) -> None:
    loaded = load_gameday(_write(tmp_path, GOOD), workload=reference_workload())
    plan = loaded.plan
    assert plan.train_steps == 300
    assert loaded.settings.params["checkpoint_every"] == 25
    assert loaded.settings.seed == 9
    assert plan.mix.dates == ("2026-11-20",)
    assert plan.mix.run_seconds == 40
    assert plan.constraints.max_active == 1
    kill, delay = plan.catalogue
    assert kill.name == "kill-while-registering"
    assert dict(kill.steps) == {"register": 1.0, "train": 2.0}
    assert kill.params["grace_period_seconds"] == ParamRange(choices=(0, 30))
    assert kill.seconds == (0.2, 1.5)
    assert delay.name == "network-delay"
    assert delay.hold_steps == (HEAL_AT_END, HEAL_AT_END)
    assert delay.params["latency_ms"] == ParamRange(low=100, high=200, integer=True)
    assert loaded.min_score == 80
    assert [c.name for c in loaded.checks][:2] == ["resume-from-checkpoint", "zero-duplicate-artifacts"]


def test_no_file_gives_the_default_catalogue_over_every_family() -> None:
    loaded = load_gameday(None, workload=reference_workload())
    kinds = {e.kind for e in loaded.plan.catalogue}
    assert kinds == {"pod-delete", "node-drain", "network-delay", "storage-throttle", "backfill-storm"}
    assert loaded.plan.train_steps == DEFAULT_TRAIN_STEPS
    deletes = [e for e in loaded.plan.catalogue if e.kind == "pod-delete"]
    assert all(set(e.steps) == {s.name for s in reference_workload().steps} for e in deletes)
    assert loaded.plan.source == "default"


@pytest.mark.parametrize(("text", "message"), [
    ("faults: [{kind: chaos-monkey}]", "unknown fault kind 'chaos-monkey'; known kinds: pod-delete"),
    ("faults: [{kind: pod-delete, steps: [nope]}]", "steps must name the pipeline's steps"),
    ("faults: [{kind: pod-delete, params: {latency_ms: 5}}]", "pod-delete has no parameter(s) latency_ms"),
    ("faults: [{kind: network-delay, hold_steps: [9, 3]}]", "hold_steps must be [low, high]"),
    ("faults: [{kind: pod-delete}, {kind: pod-delete}]", "two entries share a name"),
    ("constraints: {max_active: 0}", "max_active, max_faults_per_run and min_gap_steps must be >= 1"),
    ("constraints: {sometimes: 1}", "constraints: unknown key(s) sometimes"),
    ("workload: {dates: []}", "workload.dates must be a non-empty list"),
    ("surprise: 1", "unknown key(s) surprise"),
    ("pipeline: {colour: blue}", "does not accept setting(s) colour"),
    ("faults: [", "not valid YAML"),
])
def test_bad_files_get_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ExperimentError) as raised:
        load_gameday(_write(tmp_path, text), workload=reference_workload())
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ExperimentError, match="no such game-day file"):
        load_gameday(tmp_path / "absent.yaml", workload=reference_workload())


def test_the_nightly_file_is_the_default_game_day_written_out() -> None:
    root = Path(__file__).resolve().parents[2]
    written = load_gameday(root / "gamedays" / "nightly.yaml", workload=reference_workload())
    default = load_gameday(None, workload=reference_workload())
    assert written.plan.catalogue == default.plan.catalogue
    assert written.plan.constraints == default.plan.constraints
    assert written.plan.mix == default.plan.mix
    assert written.plan.train_steps == default.plan.train_steps
    assert written.checks == default.checks
    assert written.slos == default.slos
    assert written.settings == default.settings


ADDED_KINDS = """
faults:
  - name: spot
    kind: spot-preemption
    hold_steps: [60, 120]
    params: {notice_seconds: [15, 30]}
  - name: corrupt
    kind: checkpoint-corruption
    steps: [train]
    params: {mode: [flip, truncate], grace_period_seconds: 0}
  - name: race
    kind: registry-race
    weight: 0.5
    hold_steps: end
    params: {racers: {low: 2, high: 4, integer: true}, train_steps: 10}
"""


def test_a_file_may_add_the_kinds_the_default_night_leaves_out(tmp_path: Path) -> None:
    spot, corrupt, race = load_gameday(_write(tmp_path, ADDED_KINDS), workload=reference_workload()).plan.catalogue
    assert (spot.kind, spot.hold_steps) == ("spot-preemption", (60, 120))
    assert spot.params == {"notice_seconds": ParamRange(choices=(15, 30))}
    assert dict(corrupt.steps) == {"train": 1.0}
    assert corrupt.params == {"mode": ParamRange(choices=("flip", "truncate")),
                              "grace_period_seconds": ParamRange(choices=(0,))}
    assert (race.kind, race.weight, race.hold_steps) == ("registry-race", 0.5, (HEAL_AT_END, HEAL_AT_END))
    assert race.params == {"racers": ParamRange(low=2, high=4, integer=True), "train_steps": ParamRange(choices=(10,))}


@pytest.mark.parametrize(("fault", "message"), [
    ("{kind: spot-preemption, hold_steps: [5, 9], params: {grace_period_seconds: 30}}",
     "spot-preemption has no parameter(s) grace_period_seconds; it takes notice_seconds"),
    ("{kind: checkpoint-corruption, params: {flips: 3}}",
     "checkpoint-corruption has no parameter(s) flips; it takes grace_period_seconds, mode"),
    ("{kind: registry-race, params: {days: 3}}",
     "registry-race has no parameter(s) days; it takes racers, train_steps"),
    ("{kind: checkpoint-corruption, params: {mode: [flip, shred]}}",
     "params.mode of a checkpoint-corruption is one of truncate, flip"),
    ("{kind: checkpoint-corruption, params: {mode: {low: 0, high: 1}}}",
     "params.mode of a checkpoint-corruption is one of truncate, flip"),
    ("{kind: checkpoint-corruption, steps: [train, register]}",
     "a checkpoint-corruption is aimed at the training step (train); name no other step"),
    ("{kind: registry-race, steps: [train, evaluate]}", "a registry-race is aimed at one step"),
    ("{kind: spot-preemption}", "a spot-preemption lasts until healed"),
    ("{kind: checkpoint-corruption, hold_steps: [60, 90]}", "is healed when its run ends"),
    ("{kind: checkpoint-corruption, hold_steps: end}", "give it no hold_steps"),
    ("{kind: spot-preemption, hold_steps: [0, 40]}", "with low >= 1"),
])
def test_the_added_kinds_get_one_line_errors(tmp_path: Path, fault: str, message: str) -> None:
    with pytest.raises(ExperimentError) as raised:
        load_gameday(_write(tmp_path, f"faults: [{fault}]"), workload=reference_workload())
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_spot_preemption_may_last_until_the_run_ends(tmp_path: Path) -> None:
    [spot] = load_gameday(_write(tmp_path, "faults: [{kind: spot-preemption, hold_steps: end}]"),
                          workload=reference_workload()).plan.catalogue
    assert spot.hold_steps == (HEAL_AT_END, HEAL_AT_END)
