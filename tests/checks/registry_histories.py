"""Hand-built registry histories: alias moves, registrations and the bucket they leave behind."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from harness.checks.registry_linearizable import alias_body
from harness.evidence.inventory import Inventory, ObjectVersion
from harness.history.events import AliasMoved, Evaluated, Event, ModelRegistered

PREFIX = "registry/reference"
ALIAS_KEY = f"{PREFIX}/aliases/latest.json"


def md5(body: bytes) -> str:
    return hashlib.md5(body, usedforsecurity=False).hexdigest()


@dataclass
class Registry:
    """A bucket's registry and the events that made it. Alias writes are listed oldest first."""

    events: list[Event] = field(default_factory=list)
    versions: dict[int, str] = field(default_factory=dict)  # version -> run id
    alias_writes: list[str] = field(default_factory=list)  # ETags of the alias object versions
    extra: list[tuple[str, bytes]] = field(default_factory=list)  # further (key, body) object versions
    now: float = 1000.0

    def tick(self) -> float:
        self.now += 0.1
        return self.now

    def evaluate(self, run_id: str, value: float = 0.9, threshold: float = 0.7) -> Registry:
        self.events.append(Evaluated(ts=self.tick(), run_id=run_id, metric="auc", value=value, threshold=threshold,
                                     passed=value >= threshold))
        return self

    def claim(self, run_id: str, version: int) -> Registry:
        self.versions[version] = run_id
        return self

    def move(self, run_id: str, version: int, *, expected: str | None = None, from_version: int | None = None,
             land: bool = True, report: bool = True) -> Registry:
        """A move of latest to ``version``, conditioned on ``expected`` (default: the current alias ETag)."""
        current = self.alias_writes[-1] if self.alias_writes else ""
        etag = md5(alias_body(version, run_id))
        if land:
            self.alias_writes.append(etag)
        if report:
            self.events.append(AliasMoved(
                ts=self.tick(), run_id=run_id, alias="latest",
                from_version=from_version if from_version is not None else self.alias_version(current),
                to_version=version, etag_expected=current if expected is None else expected,
                etag_written=etag if land else "", ok=land))
        return self

    def alias_version(self, etag: str) -> int:
        for v, r in self.versions.items():
            if md5(alias_body(v, r)) == etag:
                return v
        return 0

    def registered(self, run_id: str, version: int, created: bool = True) -> Registry:
        self.events.append(ModelRegistered(ts=self.tick(), run_id=run_id, version=version, created=created))
        return self

    def register(self, run_id: str, version: int) -> Registry:
        """The correct sequence: claim, move (CAS on the current alias), report."""
        return self.claim(run_id, version).move(run_id, version).registered(run_id, version)

    def inventory(self, *, versioned: bool = True) -> Inventory:
        objects: list[ObjectVersion] = []
        bodies: list[tuple[str, bytes]] = []
        for number, run_id in sorted(self.versions.items()):
            key = f"{PREFIX}/versions/{number:06d}.json"
            body = json.dumps({"version": number, "run_id": run_id}).encode()
            objects.append(_version(key, md5(body), 0, latest=True))
            bodies.append((key, body))
            run_key = f"{PREFIX}/runs/{run_id}.json"
            if not any(o.key == run_key for o in objects):
                objects.append(_version(run_key, md5(b"run"), 0, latest=True))
        # newest first per key, as the server lists them
        count = len(self.alias_writes)
        for index, etag in reversed(list(enumerate(self.alias_writes))):
            objects.append(_version(ALIAS_KEY, etag, index, latest=index == count - 1))
        for index, (key, body) in enumerate(self.extra):
            objects.append(_version(key, md5(body), 100 + index, latest=False))
        return Inventory(bucket="b", taken_at=self.now, versions=tuple(objects), versioned=versioned,
                         bodies=tuple(bodies))


def _version(key: str, etag: str, index: int, *, latest: bool) -> ObjectVersion:
    return ObjectVersion(key=key, version_id=f"v{index}", size=10, etag=etag, last_modified=1000.0 + index,
                         is_latest=latest, is_delete_marker=False)
