"""Synthetic event data and the features computed from it.

Everything here is a pure function of (seed, date, hour): reruns, retries and
backfills produce byte-identical objects, which is what lets conditional PUTs
treat "already there" as "done".
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import numpy as np

HOURS = 24
ROWS_PER_HOUR = 1000
ENTITIES = 64
RAW_FEATURES = 16
SHARDS = 16
HOLDOUT_HOURS = range(20, 24)  # the last hours of the day are left out for evaluation
FEATURE_DIM = 2 * RAW_FEATURES + 1  # standardized row + entity daily means + entity volume


def raw_part(seed: int, date: str, hour: int) -> dict[str, np.ndarray]:
    """One hour of events: ``entity_id``, ``row``, ``x`` (float32 [n, 16]), ``label`` (0/1).

    Labels come from a fixed logistic model with an interaction term and a
    per-entity bias hidden in the entity's feature profile, so a good model
    (one that uses the daily entity aggregates) reaches an AUC around 0.85.
    """
    world = np.random.default_rng([seed, 0])  # entities and the true model: the same every day
    profiles = world.normal(0.0, 0.6, size=(ENTITIES, RAW_FEATURES))
    weights = world.normal(0.0, 1.0, size=RAW_FEATURES) / np.sqrt(RAW_FEATURES)
    day = dt.date.fromisoformat(date)
    rng = np.random.default_rng([seed, 1, day.year, day.month, day.day, hour])
    entity = rng.integers(0, ENTITIES, size=ROWS_PER_HOUR)
    x = profiles[entity] + rng.normal(0.0, 1.0, size=(ROWS_PER_HOUR, RAW_FEATURES))
    entity_bias = 1.5 * profiles[entity] @ weights[::-1]
    logit = 1.6 * (x @ weights) + 0.8 * x[:, 0] * x[:, 1] + entity_bias
    label = rng.random(ROWS_PER_HOUR) < 1.0 / (1.0 + np.exp(-logit))
    return {
        "entity_id": entity.astype(np.int32),
        "hour": np.full(ROWS_PER_HOUR, hour, dtype=np.int8),
        "row": np.arange(ROWS_PER_HOUR, dtype=np.int32),
        "x": x.astype(np.float32),
        "label": label.astype(np.int8),
    }


def feature_shards(parts: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """The day's features split into ``SHARDS`` shards by ``entity_id % SHARDS``.

    Features: each row standardized with the day's mean/std, the entity's daily
    mean of the standardized row, and the entity's daily volume (log, centred).
    Rows keep ``hour`` and ``row`` so the split and the order are reproducible.
    """
    day = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    x = day["x"].astype(np.float64)
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    entity = day["entity_id"]
    counts = np.bincount(entity, minlength=ENTITIES).astype(np.float64)
    sums = np.zeros((ENTITIES, RAW_FEATURES))
    np.add.at(sums, entity, z)
    means = sums / np.maximum(counts, 1.0)[:, None]
    volume = np.log1p(counts) - np.log1p(counts).mean()
    features = np.concatenate([z, means[entity], volume[entity][:, None]], axis=1).astype(np.float32)
    order = np.lexsort((day["row"], day["hour"]))  # by hour, then row: a fixed order
    shards = []
    for shard in range(SHARDS):
        index = order[entity[order] % SHARDS == shard]
        shards.append({
            "entity_id": entity[index],
            "hour": day["hour"][index],
            "row": day["row"][index],
            "features": features[index],
            "label": day["label"][index],
        })
    return shards


def split(shards: list[dict[str, np.ndarray]]) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((train features, labels), (holdout features, labels)), in shard order then row order."""
    features = np.concatenate([s["features"] for s in shards])
    label = np.concatenate([s["label"] for s in shards]).astype(np.float32)
    holdout = np.isin(np.concatenate([s["hour"] for s in shards]), list(HOLDOUT_HOURS))
    return (features[~holdout], label[~holdout]), (features[holdout], label[holdout])


def to_npz(arrays: dict[str, np.ndarray]) -> bytes:
    """Serialize as an uncompressed npz, byte-identical for identical arrays.

    ``np.savez`` stamps each zip member with the current time, so two attempts
    would write different bytes; here every member gets a fixed timestamp.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), member.getvalue())
    return buffer.getvalue()


def from_npz(body: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(body)) as npz:
        return {name: npz[name] for name in npz.files}
