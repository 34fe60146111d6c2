"""``lineage``: no mixed lineage; every run used its own partition, its own data version and its own model.

From the history (``inputs_read``, ``run_started``, ``training_started``, ``evaluated``,
``model_registered``) against the inventory, every run that reported inputs is judged:

- every input it read is of its own partition date: the event's ``date``, and the ``date`` group of each
  key the workload's layout matches (features, holdout, raw parts);
- one data version across all its inputs;
- every key with a ``run`` group (the model evaluated, the model its registry version points at) is the
  run's own;
- every registry record in the inventory that names a ``run_id`` and a ``model_key`` points at a model
  of that run (the version a run created points at its own model);
- a key read that the bucket never held (not in the inventory, no version at all) is a mix too: what was
  read did not come from this run's store.

Verdict: ``fail`` on any mix, naming the run, the step and the keys; ``unknown`` when no run reported
inputs, or a run trained, evaluated or registered without reporting what it read (role ``features``,
``model``); ``pass`` otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from harness.checks.inputs import RunInputs, run_inputs
from harness.checks.verdict import CheckResult, Verdict
from harness.evidence.inventory import Inventory
from harness.evidence.layout import ArtifactLayout
from harness.history.events import Evaluated, Event, ModelRegistered, TrainingStarted

NAME = "lineage"

# What a run that did this must have reported reading, to be judged at all.
_NEEDS: tuple[tuple[type[Event], str, str], ...] = (
    (TrainingStarted, "features", "trained"),
    (Evaluated, "model", "evaluated"),
    (ModelRegistered, "model", "registered"),
)


def check_lineage(events: Sequence[Event], inventory: Inventory | None, *, layout: ArtifactLayout,
                  weight: float = 1.0) -> CheckResult:
    """Judge every run's inputs; see the module docstring for the verdicts."""
    runs = run_inputs(events)
    failures: list[str] = []
    unknowns: list[str] = []
    passes: list[str] = []
    for run in runs.values():
        did = {(kind, role, what) for kind, role, what in _NEEDS
               for e in events if isinstance(e, kind) and getattr(e, "run_id", "") == run.run_id}
        silent = [what for _, role, what in sorted(did, key=lambda d: d[2]) if not run.reported(role)]
        if silent:
            unknowns.append(f"run {run.run_id} {', '.join(silent)} without reporting its inputs (inputs_read)")
        if not run.reads:
            continue
        mixes = _mixes(run, inventory, layout)
        if mixes:
            failures.append(f"run {run.run_id} (date {run.date or '?'}): " + "; ".join(mixes))
        elif not silent:
            passes.append(f"run {run.run_id}: {sum(len(r.keys) for r in run.reads)} input(s) of its own date "
                          f"{run.date}, data version {run.reads[0].data_version or '-'}, its own model")
    failures += _registry_mixes(inventory, layout)
    if not any(r.reads for r in runs.values()):
        unknowns.append("no run reported its inputs (inputs_read): lineage cannot be judged")
    if inventory is None:
        passes.append("no inventory: registry records and keys read were not checked against the bucket")
    verdict: Verdict = "fail" if failures else "unknown" if unknowns else "pass"
    return CheckResult(name=NAME, verdict=verdict, evidence=tuple(failures + unknowns + passes), weight=weight)


def _mixes(run: RunInputs, inventory: Inventory | None, layout: ArtifactLayout) -> list[str]:
    found: list[str] = []
    stored = set(inventory.keys()) if inventory is not None else None
    versions = sorted({r.data_version for r in run.reads})
    if len(versions) > 1:
        found.append(f"mixed data versions {', '.join(versions)}")
    for read in run.reads:
        where = f"{read.step_name} read {read.role}"
        if run.date and read.date != run.date:
            found.append(f"{where} of date {read.date}")
        for key in read.keys:
            matched = layout.match(key)
            if matched is not None and run.date and matched.groups.get("date", run.date) != run.date:
                found.append(f"{where} {key} of date {matched.groups['date']}")
            if matched is not None and matched.run_id and matched.run_id != run.run_id:
                found.append(f"{where} {key} of run {matched.run_id}")
            if stored is not None and key not in stored:
                found.append(f"{where} {key}, which the bucket never held")
    return found


def _registry_mixes(inventory: Inventory | None, layout: ArtifactLayout) -> list[str]:
    """Registry records (bodies the inventory read) whose model is another run's."""
    found: list[str] = []
    for key, body in inventory.bodies if inventory is not None else ():
        try:
            record = json.loads(body)
        except ValueError:
            continue
        if not isinstance(record, dict) or "run_id" not in record or "model_key" not in record:
            continue
        matched = layout.match(str(record["model_key"]))
        if matched is not None and matched.run_id and matched.run_id != record["run_id"]:
            found.append(f"registry record {key} of run {record['run_id']} points at {record['model_key']}, "
                         f"the model of run {matched.run_id}")
    return found
