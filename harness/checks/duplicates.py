"""``zero-duplicate-artifacts``: every logical artifact exists exactly once, complete.

Modelled on Jepsen's ``unique-ids`` checker: count what was attempted, what was
acknowledged, how many distinct things exist, and show examples of each
duplicate. The keys are read through the workload's declared layout
(:class:`~harness.evidence.layout.ArtifactLayout`, from its ``pipeline.yaml``):

- the history: ``artifact_written`` events are acknowledged writes; one logical
  id acknowledged twice is a duplicate;
- the inventory (every version of every key in the bucket): a key with more
  than one version was overwritten (a duplicate); two live keys that hold the
  same part of one logical artifact are a duplicate; a ``state`` part without
  its ``manifest`` part after the run's training completed, a manifest whose
  referenced keys are missing, or a temporary key left after the run finished,
  is a partial artifact; a key no rule covers is listed and not judged;
- a ``checkpoint_restored`` whose ``manifest_key`` is not a manifest of the
  restored run and step, or names one that never existed, restored a partial
  checkpoint.

Verdict: ``fail`` on any duplicate or partial; otherwise ``unknown`` when the
bucket was not inventoried, is not versioned (overwrites cannot be seen), holds
keys no rule covers, or there is nothing to judge; ``pass`` otherwise.
Artifacts are grouped by a pattern's ``pipeline`` group when it has one, so two
pipelines sharing a bucket never collide.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from harness.checks.verdict import CheckResult, Verdict
from harness.evidence.inventory import Inventory, ObjectVersion
from harness.evidence.layout import MANIFEST, STATE, ArtifactLayout, MatchedKey
from harness.history.events import (
    ArtifactWritten,
    CheckpointRestored,
    CheckpointSaved,
    Event,
    StepFinished,
    TrainingCompleted,
    of_type,
)

NAME = "zero-duplicate-artifacts"
EXAMPLES = 5

# Keys that only exist while a write is in flight (staging objects, multipart
# scratch): any left after the run finished is a partial artifact.
TEMPORARY = re.compile(r"(^|/)(_?tmp|_?temp|_temporary|\.staging)/|\.(tmp|temp|partial|inprogress|uploading)$")

Ident = tuple[str, str]  # (pipeline scope, logical id)


@dataclass(frozen=True)
class _Mapped:
    key: str
    scope: str
    logical_id: str
    match: MatchedKey


@dataclass
class _Findings:
    duplicates: list[tuple[Ident, str]] = field(default_factory=list)
    partials: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    logical: set[Ident] = field(default_factory=set)
    unjudged: list[str] = field(default_factory=list)


def check_duplicates(events: Sequence[Event], inventory: Inventory | None, *, layout: ArtifactLayout,
                     weight: float = 1.0) -> CheckResult:
    """Judge the history and the inventory against the contract above (pure: never touches S3)."""
    history = list(events)
    acks = of_type(history, ArtifactWritten)
    found = _Findings()
    _judge_acknowledgements(acks, layout, found)
    versions_seen, missing_acks = 0, []
    if inventory is not None:
        versions_seen = _judge_inventory(history, inventory, layout, {e.key: e.logical_id for e in acks}, found)
        present = {v.key for v in inventory.versions if not v.is_delete_marker}
        missing_acks = [e.key for e in acks if e.key not in present]
        if missing_acks:
            found.notes.append(f"{len(missing_acks)} acknowledged write(s) absent from the store: "
                               f"{', '.join(missing_acks[:EXAMPLES])}")
    _judge_restores(history, inventory, layout, found)
    _note_checkpoints_outside_the_store(history, inventory, layout, found)
    return _verdict(found, acks, inventory, versions_seen, missing_acks, weight)


def _scope(match: MatchedKey) -> str:
    return match.groups.get("pipeline", "")


def _judge_acknowledgements(acks: list[ArtifactWritten], layout: ArtifactLayout, found: _Findings) -> None:
    by_id: dict[Ident, list[ArtifactWritten]] = defaultdict(list)
    for e in acks:
        match = layout.match(e.key)
        ident = (_scope(match) if match is not None else "", e.logical_id)
        by_id[ident].append(e)
        found.logical.add(ident)
    for ident, group in sorted(by_id.items()):
        if len(group) > 1:
            writes = ", ".join(f"{e.key} by {e.pod or 'unknown pod'} attempt {e.attempt}" for e in group[:EXAMPLES])
            found.duplicates.append((ident, f"acknowledged {len(group)} times ({writes})"))


def _judge_inventory(events: list[Event], inventory: Inventory, layout: ArtifactLayout, acks: dict[str, str],
                     found: _Findings) -> int:
    """Overwrites, several keys for one part of an artifact, partials; returns the versions judged."""
    live = set(inventory.live_keys())
    present = {v.key for v in inventory.versions if not v.is_delete_marker}
    mapped: list[_Mapped] = []
    mutable: list[str] = []
    deleted: list[str] = []
    versions_seen = 0
    for key in inventory.keys():  # noqa: SIM118 - Inventory.keys() lists the bucket's keys; not a dict
        match = layout.match(key)
        objects = [v for v in inventory.versions_of(key) if not v.is_delete_marker]
        if match is None:
            if TEMPORARY.search(key) and key in live:
                _judge_temporary(key, events, layout, found)
            else:
                found.unjudged.append(key)
            continue
        if match.rule.mutable:
            mutable.append(f"{key} ({len(objects)} version(s))")
            continue
        versions_seen += len(objects)
        item = _Mapped(key=key, scope=_scope(match), logical_id=_logical_id(match, inventory, acks), match=match)
        found.logical.add((item.scope, item.logical_id))
        if len(objects) > 1:
            found.duplicates.append(((item.scope, item.logical_id),
                                     f"overwritten: {key} has {len(objects)} versions ({_describe(objects)})"))
        if key in live:
            mapped.append(item)
        else:
            deleted.append(key)
    parts: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for item in mapped:
        parts[(item.scope, item.logical_id, item.match.rule.part)].append(item.key)
    for (scope, ident, part), keys in sorted(parts.items()):
        if len(keys) > 1:
            what = "keys" if part == "data" else f"{part} keys"
            more = " ..." if len(keys) > EXAMPLES else ""
            found.duplicates.append(((scope, ident),
                                     f"stored under {len(keys)} {what} ({', '.join(keys[:EXAMPLES])}{more})"))
    _judge_checkpoints(mapped, events, found)
    _judge_manifest_references(mapped, inventory, present, found)
    if mutable:
        found.notes.append(f"mutable by design, excluded from the one-version rule: {', '.join(mutable[:EXAMPLES])}")
    if deleted:
        found.notes.append(f"{len(deleted)} deleted key(s) (delete marker latest) not counted as live: "
                           f"{', '.join(deleted[:EXAMPLES])}")
    return versions_seen


def _logical_id(match: MatchedKey, inventory: Inventory, acks: dict[str, str]) -> str:
    """The rule's logical id; with ``logical_from``, the body's field names the artifact instead (a
    registry version names its run), else the acknowledging event's id, else the rule's own."""
    field_name = match.rule.logical_from
    if not field_name:
        return match.logical_id
    body = inventory.body_of(match.key)
    if body is not None:
        try:
            value = json.loads(body)[field_name]
            return f"{match.logical_id.split('/', 1)[0]}/{value}"
        except (ValueError, KeyError, TypeError):
            pass
    return acks.get(match.key, match.logical_id)


def _describe(objects: list[ObjectVersion]) -> str:
    shown = [f"{v.version_id[:8]} {v.size}B etag {v.etag[:8]}" for v in objects[:EXAMPLES]]
    return ", ".join(shown) + (" ..." if len(objects) > EXAMPLES else "")


def _training_completed(events: list[Event], mapped: list[_Mapped]) -> set[str]:
    completed = {e.run_id for e in of_type(events, TrainingCompleted)}
    # A run's published model counts as completion too (its training events may predate the history).
    completed |= {m.match.run_id for m in mapped if m.logical_id.startswith("model/") and m.match.run_id}
    return completed


def _judge_checkpoints(mapped: list[_Mapped], events: list[Event], found: _Findings) -> None:
    """A ``state`` part without its ``manifest`` part is partial once the run's training completed;
    before that it may be in flight."""
    with_manifest = {(m.scope, m.logical_id) for m in mapped if m.match.rule.part == MANIFEST}
    completed = _training_completed(events, mapped)
    pending: list[str] = []
    for item in mapped:
        if item.match.rule.part != STATE or (item.scope, item.logical_id) in with_manifest:
            continue
        run_id = item.match.run_id
        if run_id and run_id in completed:
            found.partials.append(f"{item.logical_id}: {item.key} has no manifest, and training of {run_id} completed")
        else:
            pending.append(item.key)
    if pending:
        found.notes.append(f"{len(pending)} checkpoint state(s) without manifest in runs whose training did not "
                           f"complete (may be in flight, not judged): {', '.join(pending[:EXAMPLES])}")


def _judge_manifest_references(mapped: list[_Mapped], inventory: Inventory, present: set[str],
                               found: _Findings) -> None:
    """A manifest is complete only when every key it references exists."""
    for item in mapped:
        field_name = item.match.rule.references
        if item.match.rule.part != MANIFEST or not field_name:
            continue
        body = inventory.body_of(item.key)
        if body is None:
            found.notes.append(f"manifest {item.key} was not read, so its references were not checked")
            continue
        try:
            value = json.loads(body)[field_name]
        except (ValueError, KeyError, TypeError):
            found.partials.append(f"{item.logical_id}: manifest {item.key} has no readable {field_name!r} field")
            continue
        referenced = [value] if isinstance(value, str) else [str(v) for v in value] if isinstance(value, list) else []
        missing = [key for key in referenced if key not in present]
        if missing:
            found.partials.append(f"{item.logical_id}: manifest {item.key} references {', '.join(missing[:EXAMPLES])}, "
                                  "which is not in the store")


def _judge_temporary(key: str, events: list[Event], layout: ArtifactLayout, found: _Findings) -> None:
    """A temporary key left after the pipeline's steps finished is partial."""
    if any(isinstance(e, StepFinished) for e in events):
        found.partials.append(f"temporary key {key} left after the pipeline's steps finished")
    else:
        found.notes.append(f"temporary key {key} left while no step had finished (not judged)")


def _judge_restores(events: list[Event], inventory: Inventory | None, layout: ArtifactLayout,
                    found: _Findings) -> None:
    """Only a complete checkpoint (an existing manifest of that run and step) may be restored."""
    saved = {e.manifest_key for e in of_type(events, CheckpointSaved)}
    existing = {v.key for v in inventory.versions if not v.is_delete_marker} if inventory else set()
    for e in of_type(events, CheckpointRestored):
        why = _bad_restore(e, layout, saved, existing, inventory is not None)
        if why:
            found.partials.append(f"partial checkpoint restored: {e.pod or 'unknown pod'} restored step {e.step} "
                                  f"of {e.run_id} from {e.manifest_key or '(empty key)'}, {why}")


def _bad_restore(e: CheckpointRestored, layout: ArtifactLayout, saved: set[str], existing: set[str],
                 inventoried: bool) -> str:
    """Why restoring ``e.manifest_key`` was not restoring a complete checkpoint ('' if it was)."""
    if not e.manifest_key:
        return "an empty manifest key"
    match = layout.match(e.manifest_key)
    if match is None:
        # Outside the layout (a path on the pod's disk, say): nothing here can judge it.
        return ""
    if match.rule.part != MANIFEST:
        return f"which is a checkpoint's {match.rule.part}, not its manifest"
    if (match.run_id and match.run_id != e.run_id) or (match.step is not None and match.step != e.step):
        return f"which is the manifest of run {match.run_id or '?'} step {match.step}, not of this run and step"
    if e.manifest_key in saved or e.manifest_key in existing or not inventoried:
        return ""
    return "which never existed in the store"


def _note_checkpoints_outside_the_store(events: list[Event], inventory: Inventory | None, layout: ArtifactLayout,
                                        found: _Findings) -> None:
    if inventory is None:
        return
    present = {v.key for v in inventory.versions}
    outside = sorted({e.manifest_key for e in of_type(events, CheckpointSaved)
                      if e.manifest_key not in present and layout.match(e.manifest_key) is None})
    if outside:
        found.notes.append(f"{len(outside)} saved checkpoint(s) never reached the object store (on the pod's local "
                           f"disk?): {', '.join(outside[:EXAMPLES])}")


def _verdict(found: _Findings, acks: list[ArtifactWritten], inventory: Inventory | None, versions_seen: int,
             missing_acks: list[str], weight: float) -> CheckResult:
    attempted = versions_seen + len(missing_acks) if inventory is not None else len(acks)
    by_ident: dict[Ident, list[str]] = defaultdict(list)
    for ident, line in found.duplicates:
        by_ident[ident].append(line)
    if inventory is not None:
        extra = f" + {len(missing_acks)} acknowledged writes not in it" if missing_acks else ""
        source = f"{versions_seen} object versions in bucket {inventory.bucket}{extra}"
    else:
        source = "acknowledged writes only; the store was not inventoried"
    evidence = [f"attempted {attempted} ({source}), acknowledged {len(acks)}, unique logical artifacts "
                f"{len(found.logical)}, duplicated {len(by_ident)}, partial {len(found.partials)}"]
    for (_, logical_id), lines in sorted(by_ident.items())[:EXAMPLES]:
        evidence.append(f"duplicate {logical_id}: {'; '.join(lines)}")
    if len(by_ident) > EXAMPLES:
        evidence.append(f"... and {len(by_ident) - EXAMPLES} more duplicated artifact(s)")
    evidence += [line if line.startswith("partial") else f"partial {line}" for line in found.partials[:EXAMPLES]]
    if len(found.partials) > EXAMPLES:
        evidence.append(f"... and {len(found.partials) - EXAMPLES} more partial finding(s)")
    if found.unjudged:
        evidence.append(f"{len(found.unjudged)} key(s) no artifact rule of the pipeline's layout covers, not judged: "
                        f"{', '.join(found.unjudged[:EXAMPLES])}; declare them in its pipeline.yaml (artifacts)")
    evidence += found.notes

    verdict: Verdict
    if found.duplicates or found.partials:
        verdict = "fail"
    elif inventory is None:
        verdict = "unknown"
        evidence.append("the store was not inventoried, so overwrites cannot be seen: "
                        "call take_inventory after the run" if acks else
                        "nothing to decide: no artifact_written events and no inventory")
    elif not inventory.versioned:
        verdict = "unknown"
        evidence.append(f"bucket {inventory.bucket} is not versioned, so overwrites cannot be seen: "
                        "call prepare_bucket before the run")
    elif found.unjudged:
        verdict = "unknown"
        evidence.append("keys outside the declared layout were not judged, so a duplicate among them would go unseen")
    elif not acks and not found.logical:
        verdict = "unknown"
        evidence.append("nothing to decide: no artifact_written events and no pipeline artifact in the bucket")
    else:
        verdict = "pass"
        evidence.append("every logical artifact exists exactly once (one key, one version) and complete")
    return CheckResult(name=NAME, verdict=verdict, evidence=tuple(evidence), weight=weight)
