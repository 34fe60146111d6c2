"""The model registry, in the bucket, built only from conditional writes.

Layout under ``registry/<pipeline>/``:
- ``versions/NNNNNN.json``: one model version (run id, model key, ...). A version
  number is allocated by creating its object with ``IfNoneMatch='*'``; losing the
  race (412) moves on to the next number.
- ``runs/<run id>.json``: the run's version. Written after the version, with
  ``IfNoneMatch='*'``; it is the authority for "this run is registered".
- ``aliases/latest.json``: the newest version, moved with optimistic locking
  (``IfMatch`` on the ETag read), only ever forward.

One version per run id, however often register is retried: a retry finds the
run object, or the version object a previous attempt created before dying.
Version and run records go through ``Store.publish`` (the ``IfNoneMatch`` PUT;
a plain PUT only in the broken variant ``unconditional-publish``).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

from mlchaos_probe import events as probe
from mlchaos_probe.crash_points import crash_point

from . import broken
from .config import Config
from .s3 import Store


@dataclass(frozen=True)
class Version:
    version: int
    run_id: str
    date: str
    kind: str
    model_key: str
    created_at: float


class Registry:
    def __init__(self, config: Config, store: Store) -> None:
        self._config = config
        self._store = store
        self._prefix = config.registry_prefix

    def register(self) -> tuple[int, bool]:
        """(version, created) for this run, then move ``latest`` to it if it is newer."""
        run_key = f"{self._prefix}/runs/{self._config.run_id}.json"
        existing = self._store.get(run_key)
        if existing is not None:
            version, created = int(json.loads(existing.body)["version"]), False
        else:
            version, created = self._claim(run_key)
        crash_point("register.before-alias", run_id=self._config.run_id)
        self._move_latest(version)
        return version, created

    def version_key(self, version: int) -> str:
        return f"{self._prefix}/versions/{version:06d}.json"

    def _versions(self) -> dict[int, str]:
        """Every version number and the run id it belongs to."""
        result: dict[int, str] = {}
        for key in self._store.list_keys(f"{self._prefix}/versions/"):
            obj = self._store.get(key)
            if obj is not None:
                record = json.loads(obj.body)
                result[int(record["version"])] = record["run_id"]
        return result

    def _claim(self, run_key: str) -> tuple[int, bool]:
        """Allocate (or find) this run's version and write the run object; created=True if we wrote it."""
        c = self._config
        versions = self._versions()
        ours = sorted(v for v, run_id in versions.items() if run_id == c.run_id)
        if ours:  # a previous attempt died between the version and the run object
            version = ours[0]
        else:
            version = max(versions, default=0) + 1
            while not self._store.publish(self.version_key(version), self._record(version)):
                if self._run_of(version) == c.run_id:
                    break  # our own write, whose answer was lost and retried: it is ours
                version += 1  # another run took this number first
        crash_point("register.between-version-and-run", run_id=c.run_id)
        if self._store.publish(run_key, json.dumps({"version": version}).encode()):
            return version, True
        # A concurrent attempt of this same run registered first: its version is the
        # run's; ours, if different, is an orphan nobody references, so remove it.
        winner = self._store.get(run_key)
        if winner is None:
            raise RuntimeError(f"{run_key} vanished while registering")
        winner_version = int(json.loads(winner.body)["version"])
        if winner_version != version:
            self._store.delete(self.version_key(version))
        return winner_version, False

    def _run_of(self, version: int) -> str | None:
        """The run id that version ``version`` records, or None if it is gone."""
        found = self._store.get(self.version_key(version))
        return None if found is None else str(json.loads(found.body).get("run_id"))

    def _record(self, version: int) -> bytes:
        c = self._config
        record = Version(version=version, run_id=c.run_id, date=c.date, kind=c.kind,
                         model_key=c.model_key, created_at=time.time())
        return json.dumps(asdict(record)).encode()

    def _move_latest(self, version: int) -> None:
        """Compare-and-swap loop on the alias: re-read and retry when someone else moved it.

        Every write attempt is reported as an ``alias_moved`` event (what was read, what was
        written, whether it landed): the history ``registry-linearizable`` judges.
        """
        key = f"{self._prefix}/aliases/latest.json"
        body = json.dumps({"version": version, "run_id": self._config.run_id}).encode()
        unlocked = broken.ALIAS_WITHOUT_IFMATCH in self._config.broken
        while True:
            current = self._store.get(key)
            if current is None:
                from_version, expected = 0, ""
                written = self._store._put(key, body) if unlocked else self._store.create(key, body)
            else:
                from_version, expected = int(json.loads(current.body)["version"]), current.etag
                if from_version >= version:
                    return  # never move the alias backwards
                # The broken variant checked the version it read, then writes blind: another move may land between.
                written = self._store._put(key, body) if unlocked else self._store.replace(key, body, expected)
            probe.alias_moved(run_id=self._config.run_id, alias="latest", from_version=from_version,
                              to_version=version, etag_expected=expected.strip('"'),
                              etag_written=(written or "").strip('"'), ok=written is not None)
            if written is not None:
                return
