"""The model registry: ``<pipeline>/registry/versions/NNNNNN.json``, one version per run id.

Versions are numbered 1, 2, ... and each number is claimed with ``If-None-Match: *``; a version's
body names its run. Registering scans the versions first, so a retried or concurrent registration
of the same run finds the version already claimed for it instead of claiming a second one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from config import Keys
from storage import Bucket


@dataclass(frozen=True, kw_only=True)
class Entry:
    run_id: str
    model_key: str
    params_sha256: str
    metric: str
    value: float


def _run_of(bucket: Bucket, key: str) -> str:
    blob = bucket.get(key)
    if blob is None:
        return ""
    try:
        return str(json.loads(blob.body).get("run_id", ""))
    except ValueError:
        return ""


def find(bucket: Bucket, keys: Keys, run_id: str) -> int | None:
    """The version registered for ``run_id``, if any."""
    for key in bucket.keys(keys.registry_prefix()):
        if _run_of(bucket, key) == run_id:
            return int(key.rsplit("/", 1)[1].removesuffix(".json"))
    return None


def register(bucket: Bucket, keys: Keys, entry: Entry) -> tuple[int, bool]:
    """(version, created): the run's version, claiming the next free number when it has none."""
    while True:
        found = find(bucket, keys, entry.run_id)
        if found is not None:
            return found, False
        taken = [int(k.rsplit("/", 1)[1].removesuffix(".json")) for k in bucket.keys(keys.registry_prefix())]
        version = max(taken, default=0) + 1
        body = json.dumps({"version": version, **asdict(entry)}, sort_keys=True).encode()
        key = keys.registry_version(version)
        if bucket.put_new(key, body):
            stored = bucket.get(key)
            if stored is not None and stored.body == body:
                return version, True
        # Another run claimed this number first (or our write's answer was lost): look again.
