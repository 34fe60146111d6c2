"""Checkpoints of the full training state in S3, saved cheaply, restored safely.

Layout per checkpoint: ``<run>/checkpoints/step-NNNNNN/state.pt`` then
``.../MANIFEST.json`` (step, state key, sha256 and size of state.pt). Both are
conditional PUTs, and the manifest is written last: a checkpoint is complete only
when its manifest exists, so a process killed mid-save leaves nothing that a
restore would use.

Saving is split so training is blocked as little as possible: the caller
serializes the state to bytes synchronously (a consistent snapshot), and the
upload and the manifest happen in a background thread, at most one in flight.

Writes are fenced: ``fence`` (the training lease's ``ensure_held``) is called
before the state and before the manifest, and when it raises ``Fenced`` the
checkpoint is not written, so an attempt that lost its lease writes nothing more.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch

from mlchaos_probe import events as probe
from mlchaos_probe.crash_points import crash_point
from mlchaos_probe.metrics import PipelineMetrics

from . import broken
from .config import Config
from .errors import Fenced
from .s3 import Object, Store

MANIFEST = "MANIFEST.json"


@dataclass(frozen=True)
class Manifest:
    """What makes a checkpoint complete, and how to verify its state object."""

    step: int
    state_key: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Restored:
    """A verified checkpoint, loaded."""

    step: int
    manifest_key: str
    state: dict[str, Any]
    seconds: float


def serialize(state: dict[str, Any]) -> bytes:
    """The state as bytes: copies every tensor now, so training may go on mutating them."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def state_difference(a: bytes, b: bytes) -> str:
    """Where two serialized states differ ("" when every tensor and value is equal), e.g. ``optimizer.state.0``."""
    try:
        left = torch.load(io.BytesIO(a), map_location="cpu", weights_only=True)
    except Exception as error:  # a torn or foreign object is a difference, named as such
        return f"the stored object does not load: {type(error).__name__}"
    right = torch.load(io.BytesIO(b), map_location="cpu", weights_only=True)
    return _difference(left, right, "state")


def _difference(left: object, right: object, where: str) -> str:
    if isinstance(left, torch.Tensor) or isinstance(right, torch.Tensor):
        same = (isinstance(left, torch.Tensor) and isinstance(right, torch.Tensor) and left.dtype == right.dtype
                and left.shape == right.shape and bool(torch.equal(left, right)))
        return "" if same else where
    if isinstance(left, dict) and isinstance(right, dict):
        if set(left) != set(right):
            return f"{where} keys"
        return next((d for k in left if (d := _difference(left[k], right[k], f"{where}.{k}"))), "")
    if isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
        if len(left) != len(right):
            return f"{where} length"
        return next((d for i, (x, y) in enumerate(zip(left, right, strict=True))
                     if (d := _difference(x, y, f"{where}.{i}"))), "")
    return "" if left == right else where


def _rejection(manifest: Manifest | None, state: Object | None, *, verify: bool) -> str:
    """Why a checkpoint must not be restored ("" when it may): its manifest or state is missing, or (when
    ``verify``) the state's size or sha256 differs from what the manifest recorded at save time."""
    if manifest is None:
        return "manifest missing"
    if state is None:
        return f"state {manifest.state_key} missing"
    if not verify:  # broken variant restore-unverified
        return ""
    if len(state.body) != manifest.size:
        return f"state is {len(state.body)} bytes, the manifest recorded {manifest.size}"
    if hashlib.sha256(state.body).hexdigest() != manifest.sha256:
        return "state sha256 differs from the manifest's"
    return ""


def _step_of(manifest_key: str) -> int:
    """The step in ``.../step-NNNNNN/MANIFEST.json`` (-1 for a key outside the layout)."""
    name = manifest_key.rsplit("/", 2)[-2] if manifest_key.count("/") >= 2 else ""
    digits = name.removeprefix("step-")
    return int(digits) if digits.isdigit() else -1


class Checkpointer:
    """Saves and restores the checkpoints of one run."""

    def __init__(self, config: Config, store: Store, metrics: PipelineMetrics,
                 fence: Callable[[], None] | None = None) -> None:
        """``fence`` is called before each write and raises ``Fenced`` when this process
        may no longer write the run's checkpoints; None: unfenced."""
        self._config = config
        self._store = store
        self._metrics = metrics
        self._fence = fence if fence is not None else (lambda: None)
        self._inflight: threading.Thread | None = None
        self.last_complete_step: int | None = None

    def restore_latest(self) -> Restored | None:
        """Load the latest complete checkpoint whose state matches its manifest.

        A manifest whose state.pt is missing or has another sha256/size is skipped
        (and counted as a failure); an earlier complete checkpoint is used instead.
        """
        started = time.perf_counter()
        prefix = f"{self._config.run_prefix}/checkpoints/"
        if broken.RESTORE_WITHOUT_MANIFEST in self._config.broken:
            return self._restore_newest_state(prefix, started)
        manifests = [k for k in self._store.list_keys(prefix) if k.endswith("/" + MANIFEST)]
        verify = broken.RESTORE_UNVERIFIED not in self._config.broken
        for manifest_key in sorted(manifests, reverse=True):  # zero-padded steps: newest first
            manifest_object = self._store.get(manifest_key)
            state_object = None
            if manifest_object is not None:
                manifest = Manifest(**json.loads(manifest_object.body))
                state_object = self._store.get(manifest.state_key)
            reason = _rejection(manifest if manifest_object is not None else None, state_object, verify=verify)
            if reason:
                self._metrics.checkpoint_failed()
                print(f"reference_pipeline: skipping checkpoint {manifest_key}: {reason}", file=sys.stderr)
                probe.checkpoint_rejected(run_id=self._config.run_id, step=_step_of(manifest_key),
                                          manifest_key=manifest_key, reason=reason)
                continue
            assert state_object is not None  # _rejection said so
            state = torch.load(io.BytesIO(state_object.body), weights_only=True)
            seconds = time.perf_counter() - started
            self._metrics.checkpoint_restored(seconds)
            self.last_complete_step = manifest.step
            return Restored(step=manifest.step, manifest_key=manifest_key, state=state, seconds=seconds)
        return None

    def _restore_newest_state(self, prefix: str, started: float) -> Restored | None:
        """Broken variant ``restore-without-manifest``: the newest state.pt, manifest or not,
        unverified; its own key is reported as the manifest key."""
        states = sorted((k for k in self._store.list_keys(prefix) if k.endswith("/state.pt")), reverse=True)
        for state_key in states:
            state_object = self._store.get(state_key)
            if state_object is None:
                continue
            step = int(state_key.rsplit("/", 2)[-2].removeprefix("step-"))
            state = torch.load(io.BytesIO(state_object.body), weights_only=True)
            seconds = time.perf_counter() - started
            self.last_complete_step = step
            return Restored(step=step, manifest_key=state_key, state=state, seconds=seconds)
        return None

    def save(self, step: int, payload: bytes, *, reason: str, serialize_seconds: float, background: bool,
             components: Mapping[str, str]) -> None:
        """Publish ``payload`` as the checkpoint of ``step``; in a thread if ``background``.

        ``components`` are the digests of the state in ``payload``, reported in ``checkpoint_saved``.

        Waits for the previous upload first (at most one in flight), so checkpoints
        complete in step order. A failed save is reported and counted, never fatal:
        training goes on and a later checkpoint covers the work.
        """
        self.wait()
        if step == self.last_complete_step:
            return  # already complete (e.g. SIGTERM right after a periodic save)
        def work() -> None:
            self._publish(step, payload, reason, serialize_seconds, components)

        if background:
            self._inflight = threading.Thread(target=work, name=f"checkpoint-{step}", daemon=True)
            self._inflight.start()
        else:
            work()

    def wait(self) -> None:
        """Block until the in-flight upload (if any) is done."""
        if self._inflight is not None:
            self._inflight.join()
            self._inflight = None

    def _publish(self, step: int, payload: bytes, reason: str, serialize_seconds: float,
                 components: Mapping[str, str]) -> None:
        started = time.perf_counter()
        directory = self._config.checkpoint_dir(step)
        manifest = Manifest(step=step, state_key=f"{directory}/state.pt",
                            sha256=hashlib.sha256(payload).hexdigest(), size=len(payload))
        manifest_key = f"{directory}/{MANIFEST}"
        try:
            self._fence()
            if not self._store.put_if_absent(manifest.state_key, payload):
                # An earlier attempt uploaded this step's state and died before the
                # manifest. Training is deterministic, so the bytes must be equal;
                # if not, a manifest would describe an object it does not match.
                existing = self._store.get(manifest.state_key)
                if existing is None:
                    raise RuntimeError(f"{manifest.state_key} exists but could not be read back")
                if hashlib.sha256(existing.body).hexdigest() != manifest.sha256:
                    difference = state_difference(existing.body, payload)
                    if difference:
                        raise RuntimeError(f"{manifest.state_key} exists with different content ({difference})")
                    # The same state, serialized by another process (torch.save's bytes are not canonical
                    # across processes): the manifest describes the object that is there.
                    manifest = Manifest(step=step, state_key=manifest.state_key,
                                        sha256=hashlib.sha256(existing.body).hexdigest(), size=len(existing.body))
            crash_point("train.checkpoint.between-state-and-manifest", run_id=self._config.run_id)
            self._fence()
            created = self._store.put_if_absent(manifest_key, json.dumps(asdict(manifest)).encode())
        except Fenced as error:  # not a storage failure: this attempt may not write any more
            print(f"reference_pipeline: checkpoint of step {step} not written: {error}", file=sys.stderr)
            return
        except Exception as error:
            self._metrics.checkpoint_failed()
            print(f"reference_pipeline: checkpoint of step {step} failed: {error}", file=sys.stderr)
            return
        # seconds = time the training loop was blocked serializing + upload and manifest time.
        seconds = serialize_seconds + time.perf_counter() - started
        self._metrics.checkpoint_saved(seconds)
        self.last_complete_step = step
        run_id = self._config.run_id
        if created:  # a manifest already there was reported by the attempt that wrote it
            probe.artifact_written(run_id=run_id, artifact="checkpoint", key=manifest_key,
                                   logical_id=f"checkpoint/{run_id}/{step}")
        probe.checkpoint_saved(run_id=run_id, step=step, manifest_key=manifest_key, seconds=round(seconds, 6),
                               bytes=len(payload), reason=reason, components=components)
