"""``no-training-on-partial-data``: every run that trained, trained on features of a complete day.

For each run with a ``training_started``: the feature keys it read (``inputs_read`` role ``features``)
were created (``artifact_written``) by runs whose features step read raw parts (role ``raw``); those
raw parts must cover the whole day: at least ``parts_per_date`` distinct parts (24 hourly parts by
default; 0 turns the count off), and every part of that date the bucket holds or ever held (the
inventory, delete markers included: a part hidden while the features were built still counts).
Raw parts of a date are the inventory keys that the layout rule of the parts read matches, with the
same ``date`` (and ``pipeline``) group.

Verdict: ``fail`` naming the run and the parts (hours) its training data lacked; ``unknown`` when no
run trained, or a run that trained did not report what it read, or its features were not built during
the run (their raw inputs are unknown); ``pass`` otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.checks.inputs import run_inputs, writers
from harness.checks.verdict import CheckResult, Verdict
from harness.evidence.inventory import Inventory
from harness.evidence.layout import ArtifactLayout
from harness.history.events import Event, TrainingStarted, of_type

NAME = "no-training-on-partial-data"
DEFAULT_PARTS_PER_DATE = 24


def check_partial_data(events: Sequence[Event], inventory: Inventory | None, *, layout: ArtifactLayout,
                       parts_per_date: int = DEFAULT_PARTS_PER_DATE, weight: float = 1.0) -> CheckResult:
    """Judge every run that trained; see the module docstring for the verdicts."""
    runs = run_inputs(events)
    built_by = writers(events)
    trained = list(dict.fromkeys(e.run_id for e in of_type(list(events), TrainingStarted)))
    failures: list[str] = []
    unknowns: list[str] = []
    passes: list[str] = []
    if not trained:
        unknowns.append("no run trained: nothing to judge")
    if inventory is None and parts_per_date <= 0:
        unknowns.append("no inventory and no parts_per_date: what a complete day is cannot be known")
    for run_id in trained:
        run = runs.get(run_id)
        features = run.keys("features") if run is not None else frozenset()
        if not features:
            unknowns.append(f"run {run_id} trained but reported no features it read (inputs_read role features)")
            continue
        unbuilt = sorted(k for k in features if k not in built_by)
        if unbuilt:
            unknowns.append(f"run {run_id} trained on {len(unbuilt)} feature key(s) not built during this run "
                            f"(e.g. {unbuilt[0]}): their raw inputs are unknown")
            continue
        builders = sorted({built_by[k] for k in features})
        raw = frozenset().union(*(runs[b].keys("raw") for b in builders if b in runs))
        if not raw:
            unknowns.append(f"run {run_id}: the features it trained on were built by {', '.join(builders)}, "
                            "which reported no raw parts read (inputs_read role raw)")
            continue
        expected = _day_parts(raw, inventory, layout)
        missing = sorted(expected - raw)
        short = parts_per_date > 0 and len(raw) < parts_per_date
        if missing or short:
            lacks = f"; lacks {_names(missing, layout)}" if missing else ""
            failures.append(f"run {run_id} trained on features built (by {', '.join(builders)}) from "
                            f"{len(raw)} raw part(s) of a day of {max(len(expected), parts_per_date)}{lacks}")
        else:
            passes.append(f"run {run_id} trained on features of all {len(raw)} raw parts of its day")
    verdict: Verdict = "fail" if failures else "unknown" if unknowns else "pass"
    return CheckResult(name=NAME, verdict=verdict, evidence=tuple(failures + unknowns + passes), weight=weight)


def _day_parts(raw: frozenset[str], inventory: Inventory | None, layout: ArtifactLayout) -> frozenset[str]:
    """The raw parts of the dates ``raw`` belongs to, as the inventory knows them (any version)."""
    if inventory is None:
        return raw
    partitions = set()
    for key in raw:
        matched = layout.match(key)
        if matched is not None and "date" in matched.groups:
            partitions.add((matched.rule.name, matched.groups["date"], matched.groups.get("pipeline", "")))
    day = set(raw)
    held = inventory.keys()  # every key with any version or delete marker
    for key in held:
        matched = layout.match(key)
        if matched is not None and (matched.rule.name, matched.groups.get("date", ""),
                                    matched.groups.get("pipeline", "")) in partitions:
            day.add(key)
    return frozenset(day)


def _names(keys: Sequence[str], layout: ArtifactLayout) -> str:
    """``hour(s) 03, 17 (raw/...)``: the hours when the layout names them, and the keys."""
    hours = [m.groups["hour"] for m in (layout.match(k) for k in keys) if m is not None and "hour" in m.groups]
    shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
    return f"hour(s) {', '.join(hours)} ({shown})" if len(hours) == len(keys) else shown
