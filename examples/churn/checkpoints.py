"""Where checkpoints live: in S3 (the pipeline), or on the pod's own disk (the careless variant).

A checkpoint is ``step-NNNNNNNN/state.pt`` plus ``step-NNNNNNNN/manifest.json``, the manifest written
last: it lists the state file with its sha256 and size, and only a checkpoint with a manifest whose
state file matches it is ever restored. The latest such checkpoint wins.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from config import Keys
from storage import Bucket


@dataclass(frozen=True, kw_only=True)
class Saved:
    step: int
    manifest_key: str
    bytes: int
    created: bool  # this call wrote the S3 manifest (False: it was already there, or not in S3)


@dataclass(frozen=True, kw_only=True)
class Loaded:
    step: int
    manifest_key: str
    state: dict[str, Any]
    seconds: float


class CheckpointStore(Protocol):
    def save(self, step: int, payload: bytes) -> Saved: ...

    def latest(self) -> Loaded | None: ...


def serialize(state: dict[str, Any]) -> bytes:
    """The state's bytes now (training may mutate the tensors afterwards)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _manifest(run_id: str, step: int, state_key: str, payload: bytes) -> bytes:
    # Deterministic content: two attempts checkpointing the same step write the same manifest.
    return json.dumps({"run_id": run_id, "step": step, "files": [state_key],
                       "sha256": hashlib.sha256(payload).hexdigest(), "bytes": len(payload)},
                      sort_keys=True).encode()


def _verified(manifest: bytes, read: Callable[[str], bytes | None]) -> tuple[int, bytes] | None:
    """(step, state bytes) when the manifest's state file exists and matches it; else None."""
    try:
        fields = json.loads(manifest)
        step, state_key, sha = int(fields["step"]), str(fields["files"][0]), str(fields["sha256"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    payload = read(state_key)
    if payload is None or hashlib.sha256(payload).hexdigest() != sha:
        return None
    return step, payload


def _load(payload: bytes) -> dict[str, Any]:
    state: dict[str, Any] = torch.load(io.BytesIO(payload), weights_only=True)
    return state


class S3Checkpoints:
    """The run's checkpoints under ``<pipeline>/runs/<run>/checkpoints/`` in the bucket."""

    def __init__(self, bucket: Bucket, keys: Keys, run_id: str) -> None:
        self._bucket = bucket
        self._keys = keys
        self._run_id = run_id

    def save(self, step: int, payload: bytes) -> Saved:
        """Both objects with ``If-None-Match``: a state file already there (an attempt that died before its
        manifest, or a concurrent one) is kept, and the manifest describes the stored bytes."""
        state_key = self._keys.checkpoint_state(step)
        if not self._bucket.put_new(state_key, payload):
            stored = self._bucket.get(state_key)
            if stored is None:
                raise RuntimeError(f"{state_key} exists and vanished; nothing deletes checkpoints")
            payload = stored.body
        manifest_key = self._keys.checkpoint_manifest(step)
        created = self._bucket.put_new(manifest_key, _manifest(self._run_id, step, state_key, payload))
        return Saved(step=step, manifest_key=manifest_key, bytes=len(payload), created=created)

    def latest(self) -> Loaded | None:
        started = time.perf_counter()
        manifests = [k for k in self._bucket.keys(self._keys.checkpoint_prefix()) if k.endswith("/manifest.json")]
        for manifest_key in sorted(manifests, reverse=True):  # zero-padded steps: newest first
            manifest = self._bucket.get(manifest_key)
            found = None if manifest is None else _verified(manifest.body, self._read)
            if found is None:
                print(f"churn: skipping checkpoint {manifest_key}: its state file is missing or does not match",
                      file=sys.stderr, flush=True)
                continue
            step, payload = found
            return Loaded(step=step, manifest_key=manifest_key, state=_load(payload),
                          seconds=time.perf_counter() - started)
        return None

    def _read(self, key: str) -> bytes | None:
        blob = self._bucket.get(key)
        return None if blob is None else blob.body


class LocalCheckpoints:
    """CARELESS: checkpoints on the pod's own disk ($TMPDIR). Fast, and gone when the pod is."""

    def __init__(self, scratch_dir: str, run_id: str) -> None:
        self._root = Path(scratch_dir) / "churn-checkpoints" / run_id

    def save(self, step: int, payload: bytes) -> Saved:
        folder = self._root / f"step-{step:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        state_path, manifest_path = folder / "state.pt", folder / "manifest.json"
        _write_atomically(state_path, payload)
        _write_atomically(manifest_path, _manifest("", step, str(state_path), payload))
        return Saved(step=step, manifest_key=str(manifest_path), bytes=len(payload), created=False)

    def latest(self) -> Loaded | None:
        started = time.perf_counter()
        for manifest_path in sorted(self._root.glob("step-*/manifest.json"), reverse=True):
            found = _verified(manifest_path.read_bytes(), _read_file)
            if found is not None:
                step, payload = found
                return Loaded(step=step, manifest_key=str(manifest_path), state=_load(payload),
                              seconds=time.perf_counter() - started)
        return None


def _write_atomically(path: Path, payload: bytes) -> None:
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_bytes(payload)
    os.replace(partial, path)


def _read_file(path: str) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        return None
