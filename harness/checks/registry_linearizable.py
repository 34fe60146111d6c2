"""``registry-linearizable``: the model registry's ``latest`` alias behaved as a compare-and-set register.

In the style of Jepsen's register checker, over two records of the same history:

- the store's own record (the inventory: every object version of the alias, oldest first, with the
  server's ETags; the registry's version and run records), which no pipeline claim enters: each alias
  object version is decoded to the model version it names, by the ETag of the attempt that wrote it, or
  else by the MD5 ETag of the reference registry's alias body for a version the store holds;
- the pipeline's record (``alias_moved`` events: for every write attempt, the ETag it was conditioned on
  and the ETag it wrote; ``model_registered`` events).

It fails when an alias write was made against another object than the one it replaced (a lost update:
optimistic locking did not hold), when the alias moved backwards, when an acknowledged move is not in the
store, when ``latest`` ends below a version whose registration completed, or when one run id has more
than one live model version (or its run record was overwritten).
``unknown`` when the store was not inventoried or not versioned, when nothing was registered, or when an
alias object version cannot be attributed to a write (so a lost update could hide there); ``pass`` only
when every alias object version was attributed and every rule held.

The keys are the reference registry's layout, ``registry/<pipeline>/{aliases,versions,runs}/...``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from harness.checks.verdict import CheckResult, Verdict
from harness.evidence.inventory import Inventory, ObjectVersion
from harness.history.events import AliasMoved, Event, ModelRegistered, of_type

NAME = "registry-linearizable"
EXAMPLES = 5

ALIAS = re.compile(r"^(?P<prefix>registry/[^/]+)/aliases/(?P<alias>[^/]+)\.json$")
VERSION = re.compile(r"^(?P<prefix>registry/[^/]+)/versions/(?P<version>\d+)\.json$")
RUN = re.compile(r"^(?P<prefix>registry/[^/]+)/runs/(?P<run>[^/]+)\.json$")


@dataclass(frozen=True)
class AliasState:
    """One object version of an alias, decoded: ``version`` None when it could not be attributed."""

    etag: str
    version: int | None
    run_id: str
    deleted: bool = False


@dataclass
class _Findings:
    failures: list[str] = field(default_factory=list)
    unattributed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def alias_body(version: int, run_id: str) -> bytes:
    """The body the reference registry writes to an alias (``reference_pipeline.registry``)."""
    return json.dumps({"version": version, "run_id": run_id}).encode()


def check_registry(events: Sequence[Event], inventory: Inventory | None, *, weight: float = 1.0) -> CheckResult:
    """Judge the registry's history against the contract above (pure: never touches S3)."""
    history = list(events)
    moves = of_type(history, AliasMoved)
    registered = of_type(history, ModelRegistered)
    found = _Findings()
    _judge_registered_events(registered, found)
    if inventory is None or not inventory.versioned:
        return _verdict(found, inventory, moves, registered, aliases=0, weight=weight)
    versions = _live_versions(inventory)
    aliases = [k for k in inventory.keys() if ALIAS.match(k)]  # noqa: SIM118 - Inventory.keys() is not a dict
    written = {m.etag_written for m in moves if m.ok}
    for key in aliases:
        prefix = ALIAS.match(key)["prefix"]  # type: ignore[index]  # matched just above
        states = _decode(inventory.versions_of(key)[::-1], moves, versions.get(prefix, {}))
        _judge_chain(key, states, moves, found)
        _judge_final(key, states, registered, found)
    in_store = {v.etag for k in aliases for v in inventory.versions_of(k)}
    lost = sorted(written - in_store)
    if lost:
        found.failures.append(f"lost update: {len(lost)} acknowledged alias write(s) are no object version of any "
                              f"alias in the store (ETags {', '.join(e[:8] for e in lost[:EXAMPLES])})")
    _judge_runs(inventory, versions, found)
    return _verdict(found, inventory, moves, registered, aliases=len(aliases), weight=weight)


def _live_versions(inventory: Inventory) -> dict[str, dict[int, str]]:
    """Per registry prefix, each live model version and the run id its body names ("" if unread)."""
    result: dict[str, dict[int, str]] = defaultdict(dict)
    for key in inventory.live_keys():
        match = VERSION.match(key)
        if match is None:
            continue
        run_id = ""
        body = inventory.body_of(key)
        if body is not None:
            try:
                run_id = str(json.loads(body)["run_id"])
            except (ValueError, KeyError, TypeError):
                pass
        result[match["prefix"]][int(match["version"])] = run_id
    return result


def _decode(objects: Sequence[ObjectVersion], moves: list[AliasMoved], versions: dict[int, str]) -> list[AliasState]:
    """The alias's object versions, oldest first, each with the model version it names when known."""
    by_etag: dict[str, tuple[int, str]] = {m.etag_written: (m.to_version, m.run_id) for m in moves if m.ok}
    by_md5 = {hashlib.md5(alias_body(v, r), usedforsecurity=False).hexdigest(): (v, r)
              for v, r in versions.items() if r}
    states: list[AliasState] = []
    for obj in objects:
        if obj.is_delete_marker:
            states.append(AliasState(etag="", version=None, run_id="", deleted=True))
            continue
        version, run_id = by_etag.get(obj.etag) or by_md5.get(obj.etag) or (None, "")
        states.append(AliasState(etag=obj.etag, version=version, run_id=run_id))
    return states


def _judge_chain(key: str, states: list[AliasState], moves: list[AliasMoved], found: _Findings) -> None:
    """Each object version was written against its predecessor's ETag, and versions only grow."""
    writers: dict[str, list[AliasMoved]] = defaultdict(list)
    for m in moves:
        if m.ok:
            writers[m.etag_written].append(m)
    previous = AliasState(etag="", version=0, run_id="")  # before the first write the alias is absent
    for index, state in enumerate(states):
        where = f"{key} object version {index + 1} of {len(states)}"
        if state.deleted:
            found.notes.append(f"{where} is a delete marker: the alias was deleted")
            previous = AliasState(etag="", version=0, run_id="")
            continue
        if state.version is None:
            found.unattributed.append(f"{where} (ETag {state.etag[:8]}) names no version this check can decode")
        elif previous.version is not None and state.version <= previous.version:
            found.failures.append(f"moved backwards: {where} names v{state.version} ({state.run_id}) after "
                                  f"v{previous.version} ({previous.run_id})")
        candidates = writers.get(state.etag, [])
        if not candidates:
            found.unattributed.append(f"{where} (v{state.version}) has no alias_moved event that wrote it")
        elif not any(m.etag_expected == previous.etag for m in candidates):
            m = candidates[0]
            found.failures.append(
                f"lost update: {where} (v{state.version} by {m.run_id}) was written against "
                f"{_etag(m.etag_expected)} (v{m.from_version}), but it replaced {_etag(previous.etag)} "
                f"(v{previous.version}): the move did not hold the lock on what it replaced")
        previous = state


def _judge_final(key: str, states: list[AliasState], registered: list[ModelRegistered], found: _Findings) -> None:
    """``latest`` ends on the highest version whose registration (and so its move) completed."""
    if not registered or not states or states[-1].deleted or states[-1].version is None:
        return
    best = max(registered, key=lambda e: e.version)
    if states[-1].version < best.version:
        found.failures.append(f"lost update: {key} ends on v{states[-1].version} ({states[-1].run_id}), but "
                              f"v{best.version} ({best.run_id}) was registered and never replaced it")


def _judge_registered_events(registered: list[ModelRegistered], found: _Findings) -> None:
    seen: dict[str, set[int]] = defaultdict(set)
    for e in registered:
        seen[e.run_id].add(e.version)
    for run_id, numbers in sorted(seen.items()):
        if len(numbers) > 1:
            found.failures.append(f"run {run_id} was reported registered as {len(numbers)} versions "
                                  f"({', '.join(f'v{n}' for n in sorted(numbers))})")


def _judge_runs(inventory: Inventory, versions: dict[str, dict[int, str]], found: _Findings) -> None:
    """One live version per run id; one run record per run id, never overwritten."""
    for prefix, numbers in sorted(versions.items()):
        by_run: dict[str, list[int]] = defaultdict(list)
        for number, run_id in numbers.items():
            by_run[run_id or "?"].append(number)
        for run_id, owned in sorted(by_run.items()):
            if run_id != "?" and len(owned) > 1:
                found.failures.append(f"run {run_id} has {len(owned)} model versions in {prefix} "
                                      f"({', '.join(f'v{n}' for n in sorted(owned))})")
        if "?" in by_run:
            found.unattributed.append(f"{len(by_run['?'])} version record(s) in {prefix} whose body was not read")
        records = {m["run"] for k in inventory.live_keys() if (m := RUN.match(k)) and m["prefix"] == prefix}
        missing = sorted({r for r in by_run if r != "?"} - records)
        if missing:
            found.notes.append(f"{len(missing)} version(s) in {prefix} without a run record (an attempt died between "
                               f"the two writes, or a run is still registering): {', '.join(missing[:EXAMPLES])}")
    for key in inventory.keys():  # noqa: SIM118 - Inventory.keys() is not a dict
        if RUN.match(key):
            objects = [v for v in inventory.versions_of(key) if not v.is_delete_marker]
            if len(objects) > 1:
                found.failures.append(f"run record {key} was overwritten ({len(objects)} object versions)")


def _etag(etag: str) -> str:
    return f"ETag {etag[:8]}" if etag else "the absent alias"


def _verdict(found: _Findings, inventory: Inventory | None, moves: list[AliasMoved],
             registered: list[ModelRegistered], *, aliases: int, weight: float) -> CheckResult:
    ok = [m for m in moves if m.ok]
    evidence = [f"{len(moves)} alias write attempt(s), {len(ok)} landed, {len(moves) - len(ok)} refused "
                f"(lock held against a concurrent move); {len(registered)} registration(s) reported "
                f"for {len({e.run_id for e in registered})} run id(s)"]
    evidence += found.failures[:EXAMPLES]
    if len(found.failures) > EXAMPLES:
        evidence.append(f"... and {len(found.failures) - EXAMPLES} more failure(s)")
    evidence += found.unattributed[:EXAMPLES] + found.notes[:EXAMPLES]
    verdict: Verdict
    if found.failures:
        verdict = "fail"
    elif inventory is None:
        verdict = "unknown"
        evidence.append("the store was not inventoried, so the alias's real history cannot be read")
    elif not inventory.versioned:
        verdict = "unknown"
        evidence.append(f"bucket {inventory.bucket} is not versioned, so overwritten alias values cannot be seen")
    elif aliases == 0 and not registered and not ok:
        verdict = "unknown"
        evidence.append("nothing to decide: no registration happened")
    elif found.unattributed:
        verdict = "unknown"
        evidence.append("some alias writes could not be attributed, so a lost update among them would go unseen")
    else:
        verdict = "pass"
        evidence.append("every alias move replaced the object it was conditioned on, versions only grew, latest "
                        "ends on the newest registered version, and each run id has one model version")
    return CheckResult(name=NAME, verdict=verdict, evidence=tuple(evidence), weight=weight)
