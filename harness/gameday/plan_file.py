"""Load a game-day file (YAML), or make the default one, with one-line errors that say how to fix it.

The file's format is in the README ("Game days"). Every key is optional: a file
that names only ``faults`` keeps the defaults for the rest.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from harness.checks.registry import CheckSpec
from harness.checks.slo import SloSpec, parse_slos
from harness.errors import ExperimentError
from harness.experiment.loader import parse_checks, parse_pipeline
from harness.faults.checkpoint_corruption import MODES as CORRUPTION_MODES
from harness.gameday.model import (
    DEFAULT_STEP_SECONDS,
    FAULT_KINDS,
    HEAL_AT_END,
    CatalogueEntry,
    Constraints,
    GameDayPlan,
    ParamRange,
    WorkloadMix,
)
from harness.suite import DEFAULT_MIN_SCORE
from harness.workload.role import Workload
from harness.workload.settings import CHECKPOINT_EVERY, TRAIN_STEPS, PipelineSettings
from harness.yaml_file import YamlSyntaxError, read_yaml

__all__ = ["DEFAULT_TRAIN_STEPS", "GameDayFile", "default_catalogue", "load_gameday"]

DEFAULT_TRAIN_STEPS = 600
DEFAULT_CHECKPOINT_EVERY = 50

# Every run of the night is judged as the experiments judge theirs.
_DEFAULT_CHECKS: list[Any] = [
    # Many of a night's faults miss training by design: such a run is judged on its bit-identical end.
    {"name": "resume-from-checkpoint", "weight": 3, "require_interruption": False},
    {"name": "zero-duplicate-artifacts", "weight": 2},
    {"name": "pod-quota", "weight": 1, "require_scoped": False},  # most runs of a night have no backfill
    {"name": "steady-state", "weight": 1},
]
_DEFAULT_SLOS: list[Any] = [{"use": "checkpoint-failures"}, {"use": "training-stall", "threshold": 60}]

# What each kind of fault accepts, and where faults of that kind may be aimed.
_PARAMS: Mapping[str, frozenset[str]] = {
    "pod-delete": frozenset({"grace_period_seconds"}),
    "node-drain": frozenset({"grace_period_seconds"}),
    "network-delay": frozenset({"latency_ms", "jitter_ms"}),
    "storage-throttle": frozenset({"bandwidth_bytes_per_s", "slowdown_share"}),
    "backfill-storm": frozenset({"days", "concurrency", "train_steps"}),
    # Not in the default catalogue: a team adds these to its own file (see model.FAULT_KINDS).
    "spot-preemption": frozenset({"notice_seconds"}),
    "checkpoint-corruption": frozenset({"mode", "grace_period_seconds"}),
    "registry-race": frozenset({"racers", "train_steps"}),
}
# Kinds that launch runs or set a link fault once: aimed at the one step they start at.
_ONE_STEP = ("network-delay", "storage-throttle", "backfill-storm", "registry-race")
# Kinds that hold what only their heal gives back (a stopped node): an instant entry would leave it held until
# the run ends while the schedule thinks it over, so another node fault could be drawn beside it.
_MUST_LAST = ("spot-preemption",)
# Kinds healed only when their run ends: a corruption healed at a training step could be healed before the
# replacement attempt restores (the night counts training steps over every attempt, the killed one's too).
_HEAL_AT_RUN_END = ("checkpoint-corruption",)
# Parameters that take one of a few words: (kind, parameter) -> the words.
_WORDS: Mapping[tuple[str, str], tuple[str, ...]] = {("checkpoint-corruption", "mode"): CORRUPTION_MODES}


@dataclass(frozen=True, kw_only=True)
class GameDayFile:
    """A game-day file: the plan the schedule is drawn from, and how each run is set up and judged."""

    plan: GameDayPlan
    settings: PipelineSettings
    checks: tuple[CheckSpec, ...]
    slos: tuple[SloSpec, ...]
    min_score: float


def load_gameday(path: Path | None, *, workload: Workload) -> GameDayFile:
    """``path``'s game day for ``workload``, or the default one when ``path`` is None. Raises
    ExperimentError naming the file, the key and the fix."""
    raw = _read(path) if path is not None else {}
    where = path or Path("the default game day")
    source = str(path) if path is not None else "default"
    settings = _settings(where, raw.get("pipeline", {}), workload)
    train_steps = int(settings.params.get(TRAIN_STEPS, raw.get("train_steps", DEFAULT_TRAIN_STEPS)))
    if train_steps < 1:
        raise ExperimentError(f"{where}: train_steps must be a positive integer")
    step_order = tuple(s.name for s in workload.steps)
    catalogue = (tuple(_entry(where, item, i, step_order, train_step=workload.train_step)
                       for i, item in enumerate(_list(where, raw, "faults")))
                 if "faults" in raw else default_catalogue(workload))
    names = [e.name for e in catalogue]
    if len(set(names)) != len(names):
        raise ExperimentError(f"{where}: faults: two entries share a name; give each its own name")
    checks_raw = raw.get("checks", _DEFAULT_CHECKS)
    slos_raw = raw.get("slos", _DEFAULT_SLOS)
    plan = GameDayPlan(
        source=source,
        catalogue=catalogue,
        constraints=_dataclass(where, "constraints", raw.get("constraints", {}), Constraints),
        mix=_mix(where, raw.get("workload", {})),
        train_steps=train_steps,
        train_step_name=workload.train_step,
        step_order=step_order,
    )
    return GameDayFile(
        plan=plan,
        settings=settings,
        checks=parse_checks(where, checks_raw, has_slos=bool(slos_raw)),
        slos=parse_slos(slos_raw, source=str(where), metrics=workload.facts().metrics),
        min_score=_float(where, raw, "min_score", DEFAULT_MIN_SCORE),
    )


def default_catalogue(workload: Workload) -> tuple[CatalogueEntry, ...]:
    """Every fault family, weighted towards pod deletes; deletes aimed at every step (training three
    times as often as each other step: a kill while a model or registry record is written is where
    pipelines break), the other faults at training."""
    train = workload.train_step
    every_step = {s.name: (3.0 if s.name == train else 1.0) for s in workload.steps}
    return (
        CatalogueEntry(name="pod-delete-graceful", kind="pod-delete", weight=3, steps=every_step,
                       params={"grace_period_seconds": ParamRange(choices=(30,))}),
        CatalogueEntry(name="pod-delete-forced", kind="pod-delete", weight=3, steps=every_step,
                       params={"grace_period_seconds": ParamRange(choices=(0,))}),
        CatalogueEntry(name="node-drain", kind="node-drain", weight=1, hold_steps=(60, 200),
                       params={"grace_period_seconds": ParamRange(choices=(30,))}),
        CatalogueEntry(name="network-delay", kind="network-delay", weight=1, hold_steps=(100, 300),
                       params={"latency_ms": ParamRange(low=50, high=250, integer=True),
                               "jitter_ms": ParamRange(low=0, high=50, integer=True)}),
        CatalogueEntry(name="storage-throttle", kind="storage-throttle", weight=1, hold_steps=(100, 300),
                       params={"bandwidth_bytes_per_s": ParamRange(low=524288, high=2097152, integer=True),
                               "slowdown_share": ParamRange(low=0.05, high=0.2)}),
        CatalogueEntry(name="backfill-storm", kind="backfill-storm", weight=0.5, hold_steps=(150, 400),
                       params={"days": ParamRange(low=2, high=4, integer=True),
                               "concurrency": ParamRange(choices=(1,)),
                               "train_steps": ParamRange(low=20, high=40, integer=True)}),
    )


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ExperimentError(f"{path}: no such game-day file")
    try:
        raw = read_yaml(path)
    except YamlSyntaxError as exc:
        raise ExperimentError(str(exc)) from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ExperimentError(f"{path}: a game-day file is a mapping (faults, constraints, workload, ...), "
                              f"got {type(raw).__name__}")
    known = {"pipeline", "train_steps", "faults", "constraints", "workload", "checks", "slos", "min_score"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ExperimentError(f"{path}: unknown key(s) {', '.join(map(str, unknown))}; "
                              f"a game-day file has {', '.join(sorted(known))}")
    return raw


def _settings(where: Path, raw: Any, workload: Workload) -> PipelineSettings:
    if not isinstance(raw, dict):
        raise ExperimentError(f"{where}: pipeline must be a mapping of run settings")
    # A run long enough to place several faults on, checkpointing often enough to lose little.
    defaults = {k: v for k, v in ((TRAIN_STEPS, DEFAULT_TRAIN_STEPS), (CHECKPOINT_EVERY, DEFAULT_CHECKPOINT_EVERY))
                if k in workload.settings}
    return parse_pipeline(where, {**defaults, **raw}, workload)


def _list(where: Path, raw: Mapping[str, Any], key: str) -> list[Any]:
    value = raw.get(key)
    if not isinstance(value, list) or not value:
        raise ExperimentError(f"{where}: {key} must be a non-empty list")
    return value


def _entry(where: Path, item: Any, index: int, steps: tuple[str, ...], *, train_step: str) -> CatalogueEntry:
    at = f"{where}: faults[{index}]"
    if not isinstance(item, dict):
        raise ExperimentError(f"{at}: each fault is a mapping with name, kind, weight, steps, params")
    kind = item.get("kind")
    if kind not in FAULT_KINDS:
        raise ExperimentError(f"{at}: unknown fault kind {kind!r}; known kinds: {', '.join(FAULT_KINDS)}")
    name = str(item.get("name", kind))
    unknown = sorted(set(item) - {"name", "kind", "weight", "steps", "params", "hold_steps", "seconds"})
    if unknown:
        raise ExperimentError(f"{at}: unknown key(s) {', '.join(map(str, unknown))}")
    aimed = item.get("steps", {})
    if isinstance(aimed, list):
        aimed = dict.fromkeys(aimed, 1.0)
    if not isinstance(aimed, dict) or any(s not in steps for s in aimed):
        raise ExperimentError(f"{at}: steps must name the pipeline's steps ({', '.join(steps)}), "
                              "as a list or a mapping to weights")
    params = item.get("params", {})
    if not isinstance(params, dict):
        raise ExperimentError(f"{at}: params must be a mapping of parameter -> value, [choices] or {{low, high}}")
    odd = sorted(set(params) - _PARAMS[str(kind)])
    if odd:
        raise ExperimentError(f"{at}: {kind} has no parameter(s) {', '.join(map(str, odd))}; "
                              f"it takes {', '.join(sorted(_PARAMS[str(kind)]))}")
    ranges = {str(k): _range(f"{at}: params.{k}", v) for k, v in params.items()}
    hold_steps = _pair(at, item, "hold_steps", (0, 0), integer=True)
    _check_kind(at, str(kind), aimed=set(aimed), train_step=train_step, ranges=ranges, hold_steps=hold_steps)
    return CatalogueEntry(
        name=name, kind=str(kind), weight=_float(at, item, "weight", 1.0),
        steps={str(k): _weight(at, v) for k, v in aimed.items()},
        params=ranges,
        hold_steps=hold_steps,  # type: ignore[arg-type]
        seconds=_pair(at, item, "seconds", DEFAULT_STEP_SECONDS, integer=False),
    )


def _check_kind(at: str, kind: str, *, aimed: set[str], train_step: str, ranges: Mapping[str, ParamRange],
                hold_steps: tuple[float, float]) -> None:
    """What one kind allows beyond its parameter names: where it is aimed, its words, its hold."""
    if kind in _ONE_STEP and len(aimed) > 1:
        raise ExperimentError(f"{at}: a {kind} is aimed at one step (when it starts); name one")
    # The corruption kills the training pod to make it restore: fired at another step it finds none to kill.
    if kind == "checkpoint-corruption" and aimed - {train_step}:
        raise ExperimentError(f"{at}: a checkpoint-corruption is aimed at the training step ({train_step}); "
                              "name no other step")
    for param, spec in ranges.items():
        words = _WORDS.get((kind, param))
        if words is not None and (not spec.choices or set(map(str, spec.choices)) - set(words)):
            raise ExperimentError(f"{at}: params.{param} of a {kind} is one of {', '.join(words)} "
                                  "(a value or a list of them)")
    # low >= 1: a hold of 0 steps from step 0 (aimed before training) would read as INSTANT.
    if kind in _MUST_LAST and hold_steps != (HEAL_AT_END, HEAL_AT_END) and hold_steps[0] < 1:
        raise ExperimentError(f'{at}: a {kind} lasts until healed (its node is restarted then); give hold_steps '
                              '[low, high] with low >= 1, or "end"')
    if kind in _HEAL_AT_RUN_END and hold_steps != (0, 0):
        raise ExperimentError(f"{at}: a {kind} is healed when its run ends (healed at a training step, it could "
                              "be gone before the replacement restores); give it no hold_steps")


def _range(at: str, value: Any) -> ParamRange:
    if isinstance(value, bool):
        raise ExperimentError(f"{at}: must be a number, a list of choices or {{low, high}}")
    if isinstance(value, (int, float, str)):
        return ParamRange(choices=(value,))
    if isinstance(value, list) and value and all(isinstance(v, (int, float, str)) for v in value):
        return ParamRange(choices=tuple(value))
    if isinstance(value, dict) and set(value) <= {"low", "high", "integer"} and {"low", "high"} <= set(value):
        low, high = value["low"], value["high"]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) or low > high:
            raise ExperimentError(f"{at}: low and high must be numbers with low <= high")
        return ParamRange(low=float(low), high=float(high), integer=bool(value.get("integer", False)))
    raise ExperimentError(f"{at}: must be a number, a list of choices or {{low, high[, integer]}}")


def _pair(at: str, item: Mapping[str, Any], key: str, default: tuple[float, float], *,
          integer: bool) -> tuple[float, float]:
    value = item.get(key, list(default))
    if value == "end" and key == "hold_steps":
        return (HEAL_AT_END, HEAL_AT_END)
    ok = isinstance(value, list) and len(value) == 2 and all(
        isinstance(v, int if integer else (int, float)) and not isinstance(v, bool) and v >= 0 for v in value)
    if not ok or value[0] > value[1]:
        kind = "integers" if integer else "numbers"
        extra = ' (or "end": until the run ends)' if key == "hold_steps" else ""
        raise ExperimentError(f"{at}: {key} must be [low, high], two non-negative {kind} with low <= high{extra}")
    return (value[0], value[1])


def _weight(at: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ExperimentError(f"{at}: step weights must be non-negative numbers, got {value!r}")
    return float(value)


def _float(at: object, raw: Mapping[str, Any], key: str, default: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ExperimentError(f"{at}: {key} must be a non-negative number, got {value!r}")
    return float(value)


def _dataclass(where: Path, key: str, raw: Any, cls: type[Constraints]) -> Constraints:
    if not isinstance(raw, dict):
        raise ExperimentError(f"{where}: {key} must be a mapping")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ExperimentError(f"{where}: {key}: unknown key(s) {', '.join(map(str, unknown))}; "
                              f"known: {', '.join(sorted(names))}")
    for name, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ExperimentError(f"{where}: {key}.{name} must be a non-negative integer, got {value!r}")
    constraints = cls(**raw)
    if constraints.max_active < 1 or constraints.max_faults_per_run < 1 or constraints.min_gap_steps < 1:
        raise ExperimentError(f"{where}: {key}: max_active, max_faults_per_run and min_gap_steps must be >= 1")
    return constraints


def _mix(where: Path, raw: Any) -> WorkloadMix:
    if not isinstance(raw, dict) or set(raw) - {"dates", "fault_free_share", "run_seconds"}:
        raise ExperimentError(f"{where}: workload must be a mapping with dates, fault_free_share, run_seconds")
    dates = raw.get("dates", list(WorkloadMix().dates))
    if not isinstance(dates, list) or not dates or not all(isinstance(d, str) for d in dates):
        raise ExperimentError(f"{where}: workload.dates must be a non-empty list of YYYY-MM-DD dates (quoted)")
    for value in dates:
        try:
            datetime.date.fromisoformat(value)
        except ValueError:
            raise ExperimentError(f"{where}: workload.dates: {value!r} is not a YYYY-MM-DD date") from None
    share = _float(where, raw, "fault_free_share", 0.0)
    if share > 1:
        raise ExperimentError(f"{where}: workload.fault_free_share is a share between 0 and 1")
    return WorkloadMix(dates=tuple(dates), fault_free_share=share,
                       run_seconds=max(1.0, _float(where, raw, "run_seconds", WorkloadMix().run_seconds)))
