"""Structured event lines on stdout: the pipeline half of the workload contract.

Each event is ONE JSON line ``{"event": <kind>, "ts": <unix seconds>, ...fields}`` with exactly the fields the
harness's history defines for that kind (the harness adds ``pod``/``job``/``attempt`` itself when it collects
the line). Lines are flushed at once, so a SIGKILL right after an event never eats it, and written under a
lock, so lines printed from several threads never interleave.

A pipeline may add kinds of its own with :func:`register_kind`; the harness keeps lines of kinds it does not
know as unknown events.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterable, Mapping

# The harness's pipeline event kinds and their fields (harness/history/events.py), repeated here because a
# pipeline does not have the harness installed.
_STANDARD: dict[str, frozenset[str]] = {
    kind: frozenset(names.split())
    for kind, names in {
        "run_started": "pipeline run_id date kind step_name",
        "step_finished": "run_id step_name seconds",
        "step_skipped": "run_id step_name reason",
        "training_started": "run_id start_step total_steps checkpoint_every seed device",
        "train_step": "run_id step loss",
        "checkpoint_saved": "run_id step manifest_key seconds bytes reason components",
        "checkpoint_restored": "run_id step manifest_key seconds components",
        "checkpoint_rejected": "run_id step manifest_key reason",
        "sigterm_received": "run_id step",
        "training_completed": "run_id step params_sha256",
        "artifact_written": "run_id artifact key logical_id",
        "evaluated": "run_id metric value threshold passed",
        "model_registered": "run_id version created",
        "alias_moved": "run_id alias from_version to_version etag_expected etag_written ok",
        "digest_trail": "run_id step components",
        "environment": "run_id fingerprint details",
        "environment_refused": "run_id step fingerprint checkpoint_fingerprint differing",
        "inputs_read": "run_id step_name role date data_version keys",
        "inputs_waiting": "run_id step_name date missing waited_seconds",
        "crash_point": "run_id point occurrence pause_seconds",
    }.items()
}
# Fields a caller of emit() may leave out, and the value they then get.
_OPTIONAL: dict[str, dict[str, object]] = {
    "checkpoint_saved": {"components": {}},
    "checkpoint_restored": {"components": {}},
}

_fields: dict[str, frozenset[str]] = dict(_STANDARD)
_lock = threading.Lock()


def register_kind(kind: str, fields: Iterable[str]) -> None:
    """Let :func:`emit` print events of ``kind`` with exactly ``fields`` (a pipeline's private events).

    Raises ``ValueError`` when ``kind`` is a standard kind or already registered with other fields.
    """
    names = frozenset(fields)
    if kind in _STANDARD:
        raise ValueError(f"event kind {kind!r} is a standard kind; choose another name for a private event")
    known = _fields.get(kind)
    if known is not None and known != names:
        raise ValueError(f"event kind {kind!r} is already registered with fields {sorted(known)}")
    _fields[kind] = names


def emit(kind: str, /, **fields: object) -> None:
    """Print one event line and flush it.

    Raises ``ValueError`` when ``kind`` is unknown or ``fields`` are not exactly its fields, so a contract
    drift fails loudly in a pipeline's tests instead of silently in the harness.
    """
    expected = _fields.get(kind)
    if expected is None:
        raise ValueError(f"unknown event kind {kind!r}; register a private kind with register_kind() first")
    fields = {**_OPTIONAL.get(kind, {}), **fields}
    if set(fields) != expected:
        raise ValueError(f"event {kind}: fields {sorted(fields)} != {sorted(expected)}")
    line = json.dumps({"event": kind, "ts": time.time(), **fields}, sort_keys=True)
    with _lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def run_started(*, pipeline: str, run_id: str, date: str, kind: str, step_name: str) -> None:
    """A step process started working on a run (``kind``: daily or backfill)."""
    emit("run_started", pipeline=pipeline, run_id=run_id, date=date, kind=kind, step_name=step_name)


def step_finished(*, run_id: str, step_name: str, seconds: float) -> None:
    """A step process finished its work successfully."""
    emit("step_finished", run_id=run_id, step_name=step_name, seconds=seconds)


def step_skipped(*, run_id: str, step_name: str, reason: str) -> None:
    """A step found its output already published and exits early (idempotent skip)."""
    emit("step_skipped", run_id=run_id, step_name=step_name, reason=reason)


def training_started(*, run_id: str, start_step: int, total_steps: int, checkpoint_every: int, seed: int,
                     device: str) -> None:
    """Training began (or resumed) in this process at ``start_step``."""
    emit("training_started", run_id=run_id, start_step=start_step, total_steps=total_steps,
         checkpoint_every=checkpoint_every, seed=seed, device=device)


def train_step(*, run_id: str, step: int, loss: float) -> None:
    """``step`` optimizer steps are complete (1-based)."""
    emit("train_step", run_id=run_id, step=step, loss=loss)


def checkpoint_saved(*, run_id: str, step: int, manifest_key: str, seconds: float, bytes: int, reason: str,
                     components: Mapping[str, str] | None = None) -> None:
    """The checkpoint of ``step`` is complete (its manifest exists at ``manifest_key``).

    ``reason``: periodic, sigterm or final. ``components``: a sha256 per state component saved
    (see :func:`mlchaos_probe.digest.state_digests`).
    """
    emit("checkpoint_saved", run_id=run_id, step=step, manifest_key=manifest_key, seconds=seconds, bytes=bytes,
         reason=reason, components=dict(components or {}))


def checkpoint_restored(*, run_id: str, step: int, manifest_key: str, seconds: float,
                        components: Mapping[str, str] | None = None) -> None:
    """Training restored the checkpoint of ``step``; ``components`` digest the state as loaded."""
    emit("checkpoint_restored", run_id=run_id, step=step, manifest_key=manifest_key, seconds=seconds,
         components=dict(components or {}))


def checkpoint_rejected(*, run_id: str, step: int, manifest_key: str, reason: str) -> None:
    """A restore skipped the checkpoint of ``step`` at ``manifest_key``: its state failed verification
    (``reason``: missing, wrong size, wrong sha256, unreadable manifest), so an earlier one is tried."""
    emit("checkpoint_rejected", run_id=run_id, step=step, manifest_key=manifest_key, reason=reason)


def sigterm_received(*, run_id: str, step: int) -> None:
    """The process received SIGTERM while training at ``step``."""
    emit("sigterm_received", run_id=run_id, step=step)


def training_completed(*, run_id: str, step: int, params_sha256: str) -> None:
    """Training reached its last step; ``params_sha256`` hashes the final parameters."""
    emit("training_completed", run_id=run_id, step=step, params_sha256=params_sha256)


def artifact_written(*, run_id: str, artifact: str, key: str, logical_id: str) -> None:
    """This process created the object ``key`` (never reported for an object found already there)."""
    emit("artifact_written", run_id=run_id, artifact=artifact, key=key, logical_id=logical_id)


def evaluated(*, run_id: str, metric: str, value: float, threshold: float, passed: bool) -> None:
    """An evaluation gate measured ``metric`` against ``threshold``."""
    emit("evaluated", run_id=run_id, metric=metric, value=value, threshold=threshold, passed=passed)


def model_registered(*, run_id: str, version: int, created: bool) -> None:
    """The run's model is registry version ``version`` (``created``: by this process)."""
    emit("model_registered", run_id=run_id, version=version, created=created)


def alias_moved(*, run_id: str, alias: str, from_version: int, to_version: int, etag_expected: str,
                etag_written: str, ok: bool) -> None:
    """One attempt to move registry alias ``alias`` from ``from_version`` (0: absent) to ``to_version``.

    ``etag_expected``: the ETag the write was conditioned on, as read before it ("" for a create with
    IfNoneMatch, or for the read of an absent alias); ``etag_written``: the new object's ETag ("" when the
    write was refused); ``ok``: the write landed.
    """
    emit("alias_moved", run_id=run_id, alias=alias, from_version=from_version, to_version=to_version,
         etag_expected=etag_expected, etag_written=etag_written, ok=ok)


def digest_trail(*, run_id: str, step: int, components: Mapping[str, str]) -> None:
    """The training state's component digests after ``step`` (every N steps)."""
    emit("digest_trail", run_id=run_id, step=step, components=dict(components))


def inputs_read(*, run_id: str, step_name: str, role: str, date: str, data_version: str,
                keys: Iterable[str]) -> None:
    """The step read ``keys`` as its ``role`` input ("raw", "features", "holdout", "model") of partition
    ``date`` and data version ``data_version`` ("" when the pipeline has none): the run's lineage."""
    emit("inputs_read", run_id=run_id, step_name=step_name, role=role, date=date, data_version=data_version,
         keys=sorted(keys))


def inputs_waiting(*, run_id: str, step_name: str, date: str, missing: Iterable[str], waited_seconds: float) -> None:
    """A sensor is waiting for inputs of ``date`` that have not landed (``missing`` names them)."""
    emit("inputs_waiting", run_id=run_id, step_name=step_name, date=date, missing=sorted(missing),
         waited_seconds=waited_seconds)


def environment(*, run_id: str, fingerprint: str, details: Mapping[str, str]) -> None:
    """This process's environment (see :func:`mlchaos_probe.environment.fingerprint`); once per process."""
    emit("environment", run_id=run_id, fingerprint=fingerprint, details=dict(details))


def environment_refused(*, run_id: str, step: int, fingerprint: str, checkpoint_fingerprint: str,
                        differing: str) -> None:
    """Training refused to resume the checkpoint of ``step``: it was written under environment
    ``checkpoint_fingerprint``, this process runs under ``fingerprint``; ``differing`` names the detail
    keys that differ, comma-separated."""
    emit("environment_refused", run_id=run_id, step=step, fingerprint=fingerprint,
         checkpoint_fingerprint=checkpoint_fingerprint, differing=differing)


def crash_point(*, run_id: str, point: str, occurrence: int, pause_seconds: float) -> None:
    """The process reached crash point ``point`` for the ``occurrence``-th time and holds there for
    ``pause_seconds`` (see :mod:`mlchaos_probe.crash_points`)."""
    emit("crash_point", run_id=run_id, point=point, occurrence=occurrence, pause_seconds=pause_seconds)
