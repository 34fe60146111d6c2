"""``zero-duplicate-artifacts``: every logical artifact exists exactly once, complete.

Modelled on Jepsen's ``unique-ids`` checker: count what was attempted, what was
acknowledged, how many distinct things exist, and show examples of each
duplicate. Two sources, each judged on its own:

- the history: ``artifact_written`` events are acknowledged writes; one logical
  id acknowledged twice is a duplicate;
- the inventory (every version of every key in the bucket): each key is mapped
  to a logical artifact by ``LAYOUT`` below. A key with more than one version
  was overwritten (a duplicate); two live keys that map to the same artifact
  (and the same part of it) are a duplicate; a checkpoint ``state.pt`` without
  its ``MANIFEST.json`` after the run's training completed, or a temporary key
  left after the run finished, is a partial artifact;
- a ``checkpoint_restored`` whose ``manifest_key`` is not a ``MANIFEST.json`` of
  the restored run and step, or names one that never existed, restored a
  partial checkpoint.

Verdict: ``fail`` on any duplicate or partial; otherwise ``unknown`` when the
bucket was not inventoried or is not versioned (overwrites cannot be seen) or
there is nothing to judge; ``pass`` otherwise.

Logical ids are the pipeline's own (the ``logical_id`` of ``artifact_written``):
``raw/<date>/<hour>``, ``features/<date>/<shard>``, ``checkpoint/<run>/<step>``,
``model/<run>``, ``evaluation/<run>``, ``model_version/<run>``, plus
``validation/<run>`` (no event). Artifacts are grouped per pipeline (the key's
second segment), so two pipelines sharing a bucket never collide.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.checks.verdict import CheckResult, Verdict
from harness.history.events import (
    ArtifactWritten,
    CheckpointRestored,
    CheckpointSaved,
    Event,
    StepFinished,
    TrainingCompleted,
    of_type,
)
from harness.services.inventory import Inventory, ObjectVersion

NAME = "zero-duplicate-artifacts"
EXAMPLES = 5

_P = r"(?P<p>[^/]+)"
_D = r"(?P<d>[^/]+)"
_R = r"(?P<r>[^/]+)"
_RUN = rf"runs/{_P}/{_D}/{_R}"


@dataclass(frozen=True)
class Rule:
    """One row of the layout table: keys matching ``pattern`` hold ``part`` of
    the logical artifact ``logical(match)``; ``mutable`` keys may be rewritten."""

    name: str
    pattern: re.Pattern[str]
    logical: Callable[[re.Match[str]], str]
    part: str = "data"
    mutable: bool = False


def _int(m: re.Match[str], group: str) -> int:
    return int(m.group(group))


# The reference pipeline's key layout (reference_pipeline/config.py, registry.py,
# checkpoint.py). ``features/...`` also matches parts under a shard directory, so
# appended part files of one (date, shard) map to one artifact. A registry
# version's run id is read from its body (Inventory.bodies) or, failing that,
# from the artifact_written event that acknowledged the key.
LAYOUT: tuple[Rule, ...] = (
    Rule("raw part", re.compile(rf"^raw/{_P}/date={_D}/hour=(?P<h>\d+)/[^/]+$"),
         lambda m: f"raw/{m['d']}/{_int(m, 'h'):02d}"),
    Rule("feature partition", re.compile(rf"^features/{_P}/date={_D}/entity_shard=(?P<s>\d+)(?:\.npz|/[^/]+)$"),
         lambda m: f"features/{m['d']}/{_int(m, 's'):02d}"),
    Rule("checkpoint state", re.compile(rf"^{_RUN}/checkpoints/step-(?P<n>\d+)/state\.pt$"),
         lambda m: f"checkpoint/{m['r']}/{_int(m, 'n')}", part="state"),
    Rule("checkpoint manifest", re.compile(rf"^{_RUN}/checkpoints/step-(?P<n>\d+)/MANIFEST\.json$"),
         lambda m: f"checkpoint/{m['r']}/{_int(m, 'n')}", part="manifest"),
    Rule("model", re.compile(rf"^{_RUN}/model/model\.pt$"), lambda m: f"model/{m['r']}"),
    Rule("evaluation", re.compile(rf"^{_RUN}/evaluation\.json$"), lambda m: f"evaluation/{m['r']}"),
    Rule("validation", re.compile(rf"^{_RUN}/validate\.json$"), lambda m: f"validation/{m['r']}"),
    Rule("registry version", re.compile(rf"^registry/{_P}/versions/(?P<v>\d+)\.json$"),
         lambda m: f"model_version/?v{_int(m, 'v')}", part="version"),
    Rule("registry run record", re.compile(rf"^registry/{_P}/runs/{_R}\.json$"),
         lambda m: f"model_version/{m['r']}", part="run-record"),
    Rule("registry alias", re.compile(rf"^registry/{_P}/aliases/[^/]+$"), lambda m: "", mutable=True),
    Rule("training lease", re.compile(rf"^{_RUN}/train\.lease$"), lambda m: "", mutable=True),
)

# Keys that only exist while a write is in flight (staging objects, multipart
# scratch): any left after the run finished is a partial artifact.
TEMPORARY = re.compile(r"(^|/)(_?tmp|_?temp|_temporary|\.staging)/|\.(tmp|temp|partial|inprogress|uploading)$")
_RUN_OF_KEY = re.compile(rf"^{_RUN}/")
_MANIFEST = re.compile(rf"^{_RUN}/checkpoints/step-(?P<n>\d+)/MANIFEST\.json$")


@dataclass(frozen=True)
class _Mapped:
    key: str
    scope: str  # the pipeline name in the key
    logical_id: str
    part: str
    rule: Rule


def check_duplicates(events: Sequence[Event], inventory: Inventory | None, *, weight: float = 1.0) -> CheckResult:
    """Judge the history and the inventory against the contract above (pure: never touches S3)."""
    events = list(events)
    acks = of_type(events, ArtifactWritten)
    ack_ids = {e.key: e.logical_id for e in acks}
    duplicates: list[tuple[tuple[str, str], str]] = []  # ((pipeline, logical id), finding)
    partials: list[str] = []
    notes: list[str] = []
    logical: set[tuple[str, str]] = set()

    # --- history: the same logical artifact acknowledged more than once
    by_id: dict[tuple[str, str], list[ArtifactWritten]] = defaultdict(list)
    for e in acks:
        ident = (_scope_of_key(e.key), e.logical_id)
        by_id[ident].append(e)
        logical.add(ident)
    for (scope, ident), group in sorted(by_id.items()):
        if len(group) > 1:
            writes = ", ".join(f"{e.key} by {e.pod or 'unknown pod'} attempt {e.attempt}" for e in group[:EXAMPLES])
            duplicates.append(((scope, ident), f"acknowledged {len(group)} times ({writes})"))

    # --- inventory: overwrites, several keys for one artifact, partials
    versions_seen = 0
    missing_acks: list[str] = []
    if inventory is not None:
        live = set(inventory.live_keys())
        present = {v.key for v in inventory.versions if not v.is_delete_marker}
        mapped: list[_Mapped] = []
        unmapped: list[str] = []
        mutable: list[str] = []
        deleted: list[str] = []
        for key in inventory.keys():
            rule, match = _rule_for(key)
            objects = [v for v in inventory.versions_of(key) if not v.is_delete_marker]
            if rule is None or match is None:
                if TEMPORARY.search(key) and key in live:
                    _judge_temporary(key, events, partials, notes)
                else:
                    unmapped.append(key)
                continue
            if rule.mutable:
                mutable.append(f"{key} ({len(objects)} version(s))")
                continue
            versions_seen += len(objects)
            ident = _logical_id(rule, match, key, inventory, ack_ids)
            item = _Mapped(key=key, scope=match["p"], logical_id=ident, part=rule.part, rule=rule)
            logical.add((item.scope, ident))
            if len(objects) > 1:
                duplicates.append(((item.scope, ident),
                                   f"overwritten: {key} has {len(objects)} versions ({_describe(objects)})"))
            if key in live:
                mapped.append(item)
            else:
                deleted.append(key)
        # Several live keys for one part of one logical artifact.
        groups: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        for item in mapped:
            groups[(item.scope, item.logical_id, item.part)].append(item.key)
        for (scope, ident, part), keys in sorted(groups.items()):
            if len(keys) > 1:
                what = "keys" if part == "data" else f"{part} keys"
                more = " ..." if len(keys) > EXAMPLES else ""
                duplicates.append(((scope, ident),
                                   f"stored under {len(keys)} {what} ({', '.join(keys[:EXAMPLES])}{more})"))
        _judge_checkpoints(mapped, live, events, partials, notes)
        for e in acks:
            if e.key not in present:
                missing_acks.append(e.key)
        if mutable:
            notes.append(f"mutable by design, excluded from the one-version rule: {', '.join(mutable[:EXAMPLES])}")
        if deleted:
            notes.append(f"{len(deleted)} deleted key(s) (delete marker latest) not counted as live: "
                         f"{', '.join(deleted[:EXAMPLES])}")
        if unmapped:
            notes.append(f"{len(unmapped)} key(s) outside the layout table, not judged: {', '.join(unmapped[:EXAMPLES])}")
        if missing_acks:
            notes.append(f"{len(missing_acks)} acknowledged write(s) absent from the store: "
                         f"{', '.join(missing_acks[:EXAMPLES])}")

    # --- restores: only a complete checkpoint (an existing MANIFEST.json of that step) may be restored
    saved_manifests = {e.manifest_key for e in of_type(events, CheckpointSaved)}
    existing_keys = {v.key for v in inventory.versions if not v.is_delete_marker} if inventory else set()
    for e in of_type(events, CheckpointRestored):
        why = _bad_restore(e, saved_manifests, existing_keys, inventory is not None)
        if why:
            partials.append(f"partial checkpoint restored: {e.pod or 'unknown pod'} restored step {e.step} of "
                            f"{e.run_id} from {e.manifest_key or '(empty key)'}, {why}")

    # --- counts and verdict
    attempted = versions_seen + len(missing_acks) if inventory is not None else len(acks)
    findings: dict[tuple[str, str], list[str]] = defaultdict(list)
    for ident, line in duplicates:
        findings[ident].append(line)
    dup_ids = set(findings)
    source = (f"{versions_seen} object versions in bucket {inventory.bucket}"
              + (f" + {len(missing_acks)} acknowledged writes not in it" if missing_acks else "")
              if inventory is not None else "acknowledged writes only; the store was not inventoried")
    summary = (f"attempted {attempted} ({source}), acknowledged {len(acks)}, unique logical artifacts "
               f"{len(logical)}, duplicated {len(dup_ids)}, partial {len(partials)}")
    evidence = [summary]
    # Up to EXAMPLES duplicated artifacts, each with everything found about it.
    for (_, ident), lines in sorted(findings.items())[:EXAMPLES]:
        evidence.append(f"duplicate {ident}: {'; '.join(lines)}")
    if len(findings) > EXAMPLES:
        evidence.append(f"... and {len(findings) - EXAMPLES} more duplicated artifact(s)")
    evidence += [f"partial {line}" if not line.startswith("partial") else line for line in partials[:EXAMPLES]]
    if len(partials) > EXAMPLES:
        evidence.append(f"... and {len(partials) - EXAMPLES} more partial finding(s)")
    evidence += notes

    verdict: Verdict
    if duplicates or partials:
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
    elif not acks and not logical:
        verdict = "unknown"
        evidence.append("nothing to decide: no artifact_written events and no pipeline artifact in the bucket")
    else:
        verdict = "pass"
        evidence.append("every logical artifact exists exactly once (one key, one version) and complete")
    return CheckResult(name=NAME, verdict=verdict, evidence=tuple(evidence), weight=weight)


def _rule_for(key: str) -> tuple[Rule | None, re.Match[str] | None]:
    for rule in LAYOUT:
        match = rule.pattern.match(key)
        if match:
            return rule, match
    return None, None


def _scope_of_key(key: str) -> str:
    """The pipeline a key belongs to ('' when the key is outside the layout)."""
    rule, match = _rule_for(key)
    return str(match["p"]) if match is not None else ""


def _logical_id(rule: Rule, match: re.Match[str], key: str, inventory: Inventory, acks: dict[str, str]) -> str:
    if rule.name != "registry version":
        return rule.logical(match)
    body = inventory.body_of(key)
    if body is not None:
        try:
            return f"model_version/{json.loads(body)['run_id']}"
        except (ValueError, KeyError, TypeError):
            pass
    if key in acks:
        return acks[key]
    return rule.logical(match)  # run id unknown: the version stands alone


def _describe(objects: list[ObjectVersion]) -> str:
    shown = [f"{v.version_id[:8]} {v.size}B etag {v.etag[:8]}" for v in objects[:EXAMPLES]]
    return ", ".join(shown) + (" ..." if len(objects) > EXAMPLES else "")


def _run_finished(events: list[Event], run_id: str) -> bool:
    return any(isinstance(e, (StepFinished, TrainingCompleted)) and e.run_id == run_id for e in events)


def _judge_checkpoints(mapped: list[_Mapped], live: set[str], events: list[Event], partials: list[str],
                       notes: list[str]) -> None:
    """A state.pt without its MANIFEST.json is partial once the run's training completed
    (a live model.pt counts as completion too); before that it may be in flight."""
    completed = {e.run_id for e in of_type(events, TrainingCompleted)}
    completed |= {m.logical_id.split("/", 1)[1] for m in mapped if m.rule.name == "model"}
    pending: list[str] = []
    for item in mapped:
        if item.part != "state":
            continue
        manifest = item.key[: -len("state.pt")] + "MANIFEST.json"
        if manifest in live:
            continue
        run_id = item.logical_id.split("/")[1]
        if run_id in completed:
            partials.append(f"{item.logical_id}: {item.key} has no MANIFEST.json, and training of {run_id} completed")
        else:
            pending.append(item.key)
    if pending:
        notes.append(f"{len(pending)} state.pt without manifest in runs whose training did not complete "
                     f"(may be in flight, not judged): {', '.join(pending[:EXAMPLES])}")


def _judge_temporary(key: str, events: list[Event], partials: list[str], notes: list[str]) -> None:
    """A temporary key left after its run (or, outside a run prefix, any step) finished is partial."""
    match = _RUN_OF_KEY.match(key)
    finished = (_run_finished(events, match["r"]) if match
                else any(isinstance(e, StepFinished) for e in events))
    if finished:
        owner = f"run {match['r']}" if match else "the pipeline's steps"
        partials.append(f"temporary key {key} left after {owner} finished")
    else:
        notes.append(f"temporary key {key} left while its run had not finished (not judged)")


def _bad_restore(e: CheckpointRestored, saved: set[str], existing: set[str], inventoried: bool) -> str:
    """Why restoring ``e.manifest_key`` was not restoring a complete checkpoint ('' if it was)."""
    if not e.manifest_key:
        return "an empty manifest key"
    match = _MANIFEST.match(e.manifest_key)
    if match is None:
        return "which is not a MANIFEST.json"
    if match["r"] != e.run_id or int(match["n"]) != e.step:
        return f"which is the manifest of run {match['r']} step {int(match['n'])}, not of this run and step"
    if e.manifest_key in saved or e.manifest_key in existing:
        return ""
    if inventoried:
        return "which never existed in the store"
    return ""  # no inventory: a well-formed manifest key is all the history can show
