"""Hand-built histories of whole pipeline runs with their inputs (``inputs_read``), for the lineage and
partial-data checks, and the inventory of what they left."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from harness.evidence.inventory import Inventory, ObjectVersion
from harness.history.events import (
    ArtifactWritten,
    Evaluated,
    Event,
    InputsRead,
    ModelRegistered,
    RunStarted,
    TrainingStarted,
)

P = "reference"
VERSION = "seed-7"


def raw_key(date: str, hour: int) -> str:
    return f"raw/{P}/date={date}/hour={hour:02d}/part-0.npz"


def feature_key(date: str, shard: int) -> str:
    return f"features/{P}/date={date}/entity_shard={shard:02d}.npz"


def model_key(run_id: str, date: str) -> str:
    return f"runs/{P}/{date}/{run_id}/model/model.pt"


@dataclass
class Runs:
    """Events of pipeline runs, one after another, and the keys they left in the bucket."""

    events: list[Event] = field(default_factory=list)
    stored: dict[str, bytes] = field(default_factory=dict)
    now: float = 1000.0

    def _ts(self) -> float:
        self.now += 0.1
        return self.now

    def started(self, run_id: str, date: str) -> Runs:
        self.events.append(RunStarted(ts=self._ts(), pipeline=P, run_id=run_id, date=date, kind="daily",
                                      step_name="ingest"))
        return self

    def read(self, run_id: str, step: str, role: str, date: str, keys: Iterable[str],
             version: str = VERSION) -> Runs:
        self.events.append(InputsRead(ts=self._ts(), run_id=run_id, step_name=step, role=role, date=date,
                                      data_version=version, keys=tuple(keys)))
        return self

    def wrote(self, run_id: str, keys: Iterable[str], artifact: str = "feature_partition") -> Runs:
        for key in keys:
            self.events.append(ArtifactWritten(ts=self._ts(), run_id=run_id, artifact=artifact, key=key,
                                               logical_id=key))
            self.stored.setdefault(key, b"x")
        return self

    def land_raw(self, date: str, hours: Iterable[int]) -> Runs:
        for hour in hours:
            self.stored.setdefault(raw_key(date, hour), b"x")
        return self

    def full_run(self, run_id: str, date: str, *, raw_hours: Iterable[int] = range(24),
                 features_date: str = "", eval_model: str = "", registered_model: str = "") -> Runs:
        """A run that builds its features from ``raw_hours``, trains, evaluates and registers."""
        fdate = features_date or date
        features = [feature_key(fdate, s) for s in range(16)]
        own_model = model_key(run_id, date)
        self.started(run_id, date).land_raw(date, range(24))
        if fdate == date:
            self.read(run_id, "features", "raw", date, [raw_key(date, h) for h in raw_hours])
            self.wrote(run_id, features)
        self.read(run_id, "train", "features", fdate, features)
        self.events.append(TrainingStarted(ts=self._ts(), run_id=run_id, start_step=0, total_steps=10,
                                           checkpoint_every=5, seed=7, device="cpu"))
        self.wrote(run_id, [own_model], artifact="model")
        self.read(run_id, "evaluate", "model", date, [eval_model or own_model])
        self.read(run_id, "evaluate", "holdout", fdate, features)
        self.events.append(Evaluated(ts=self._ts(), run_id=run_id, metric="auc", value=0.8, threshold=0.7,
                                     passed=True))
        version = 1 + sum(isinstance(e, ModelRegistered) for e in self.events)
        record = {"version": version, "run_id": run_id, "model_key": registered_model or own_model}
        self.stored[f"registry/{P}/versions/{version:06d}.json"] = json.dumps(record).encode()
        self.events.append(ModelRegistered(ts=self._ts(), run_id=run_id, version=version, created=True))
        self.read(run_id, "register", "model", date, [registered_model or own_model])
        return self

    def inventory(self, *, hidden: Iterable[str] = ()) -> Inventory:
        """Every stored key as one live version; ``hidden`` keys as a version under a delete marker."""
        versions: list[ObjectVersion] = []
        gone = set(hidden)
        for key in sorted(self.stored):
            if key in gone:
                versions.append(ObjectVersion(key=key, version_id="m", size=0, etag="", last_modified=2.0,
                                              is_latest=True, is_delete_marker=True))
            versions.append(ObjectVersion(key=key, version_id="v", size=1, etag="e", last_modified=1.0,
                                          is_latest=key not in gone, is_delete_marker=False))
        bodies = tuple((k, b) for k, b in self.stored.items() if k.startswith(f"registry/{P}/versions/"))
        return Inventory(bucket="b", taken_at=9.0, versions=tuple(versions), versioned=True, bodies=bodies)
