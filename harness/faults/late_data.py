"""Late and missing data: some of a day's hourly raw parts land late, or not at all during the run.

The fault watches the parts it picked (a seeded choice of ``count`` among ``keys``); as each one lands
(ingest wrote it, or it was already there) it hides it by deleting it in the versioned bucket, which
adds a delete marker and keeps the object's version untouched. The part "lands" ``delay_seconds`` later
when the fault deletes exactly that delete marker (by its VersionId): the original version is the
latest again, byte for byte, and the bucket gains no version, so the duplicate check sees nothing of
the fault. With ``missing`` a part stays hidden until heal.

Heal stops the watcher and removes every delete marker the fault made (idempotent: a marker already
gone is fine). The undo record, written before the fault acts, names the bucket and the picked keys;
``mlchaos heal`` after a killed harness removes the delete markers of those keys made since the
record was written. The bucket must keep versions (the harness enables versioning on every run's
bucket); the fault refuses an unversioned one, where a delete would destroy the part.
One late-data fault per picked key (group ``object:<key>``).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from harness.errors import HarnessError
from harness.faults.role import FaultContext, Heal, Target
from harness.undo import UndoLog, UndoRecord, register_kind

__all__ = ["LATE_DATA", "LateData", "LateDataParams", "NAME", "UNDO_KIND"]

NAME = "late-data"
UNDO_KIND = "late-data"
POLL_SECONDS = 0.1  # ingest writes a part every few ms: the watcher must hide it before a reader lists it
MARKER_CLOCK_SLACK_SECONDS = 2.0  # S3 stamps whole seconds: markers this much older than the record count too


@dataclass(frozen=True, kw_only=True)
class LateDataParams:
    """Hide ``count`` of ``keys`` (seeded choice) as they land; each lands ``delay_seconds`` after it was
    hidden, or, with ``missing``, only at heal. A picked key not seen within ``watch_seconds`` of the
    injection is given up on (reported at heal)."""

    keys: tuple[str, ...]
    count: int = 1
    delay_seconds: float = 10.0
    missing: bool = False
    watch_seconds: float = 300.0

    def __post_init__(self) -> None:
        if not self.keys or len(set(self.keys)) != len(self.keys):
            raise ValueError("late-data needs distinct candidate keys")
        if not 1 <= self.count <= len(self.keys):
            raise ValueError(f"late-data count must be between 1 and {len(self.keys)}, got {self.count}")
        if self.delay_seconds < 0 or self.watch_seconds <= 0:
            raise ValueError("late-data delay_seconds must be >= 0 and watch_seconds > 0")


def picked_keys(ctx: FaultContext, params: LateDataParams) -> tuple[str, ...]:
    """The keys the fault hides: the same for the same fault seed (plan and inject agree)."""
    return tuple(sorted(ctx.rng().sample(sorted(params.keys), params.count)))


class LateData:
    name = NAME

    def plan(self, ctx: FaultContext, params: LateDataParams) -> Target:
        if not ctx.s3_url or not ctx.bucket:
            raise HarnessError("late-data needs direct access to the pipeline's bucket; this environment gives "
                               "the harness no direct S3 endpoint")
        keys = picked_keys(ctx, params)
        refusal = ""
        if not _versioned(ctx.s3_url, ctx.bucket):
            refusal = (f"bucket {ctx.bucket} does not keep versions: hiding a part there would destroy it; "
                       "enable versioning (harness.services.inventory.prepare_bucket) first")
        when = "stay missing until healed" if params.missing else f"land {params.delay_seconds:g} s late"
        return Target(name=f"{len(keys)} of {len(params.keys)} parts", excludes=tuple(f"object:{k}" for k in keys),
                      detail=f"hides {', '.join(keys)} as they land; they {when}", refusal=refusal,
                      undo=partial(_add_record, url=ctx.s3_url, bucket=ctx.bucket, keys=keys,
                                   ephemeral=ctx.cluster.kind == "embedded"))

    def inject(self, ctx: FaultContext, params: LateDataParams, target: Target) -> Heal:
        watcher = _Watcher(client=_client(ctx.s3_url), bucket=ctx.bucket, keys=picked_keys(ctx, params),
                           params=params)
        watcher.start()

        def heal() -> str:
            watcher.stop()
            try:
                return watcher.restore_all()
            except Exception as exc:
                raise HarnessError(f"late-data could not put back {', '.join(watcher.hidden_now())}: {exc}") from exc

        return heal


@dataclass
class _Watcher:
    """The thread that hides the picked keys as they land and lets them land late."""

    client: Any
    bucket: str
    keys: tuple[str, ...]
    params: LateDataParams
    markers: dict[str, str] = field(default_factory=dict)  # key -> the delete marker's VersionId
    hidden_at: dict[str, float] = field(default_factory=dict)
    landed: dict[str, float] = field(default_factory=dict)  # key -> seconds it was late
    error: str = ""

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="late-data", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def hidden_now(self) -> list[str]:
        with self._lock:
            return sorted(k for k in self.markers if k not in self.landed)

    def _run(self) -> None:
        deadline = time.monotonic() + self.params.watch_seconds
        while not self._stop.is_set():
            try:
                now = time.monotonic()
                for key in self.keys:
                    if key not in self.markers and now < deadline and _exists(self.client, self.bucket, key):
                        self._hide(key)
                if not self.params.missing:
                    for key in self.hidden_now():
                        if time.monotonic() - self.hidden_at[key] >= self.params.delay_seconds:
                            self._land(key)
                with self._lock:
                    done = len(self.markers) == len(self.keys) and (
                        self.params.missing or len(self.landed) == len(self.keys))
                if done or (now >= deadline and not self.hidden_now()):
                    return
            except Exception as exc:  # keep watching: a transient S3 error must not leave parts hidden for good
                self.error = f"{type(exc).__name__}: {exc}"
            self._stop.wait(POLL_SECONDS)

    def _hide(self, key: str) -> None:
        response = self.client.delete_object(Bucket=self.bucket, Key=key)
        if not response.get("DeleteMarker") or not response.get("VersionId"):
            raise HarnessError(f"deleting {key} made no delete marker: is versioning on for {self.bucket}?")
        with self._lock:
            self.markers[key] = str(response["VersionId"])
            self.hidden_at[key] = time.monotonic()

    def _land(self, key: str) -> None:
        _remove_marker(self.client, self.bucket, key, self.markers[key])
        with self._lock:
            self.landed[key] = round(time.monotonic() - self.hidden_at[key], 3)

    def restore_all(self) -> str:
        """Put back every part still hidden (idempotent) and say what the fault did."""
        late = [f"{k} ({s:g} s late)" for k, s in sorted(self.landed.items())]
        restored = self.hidden_now()
        for key in restored:
            self._land(key)
        unseen = sorted(set(self.keys) - set(self.markers))
        parts = [f"hid {len(self.markers)} of {len(self.keys)} part(s)"]
        if late:
            parts.append(f"landed late: {', '.join(late)}")
        if restored:
            parts.append(f"missing until heal, now restored: {', '.join(restored)}")
        if unseen:
            parts.append(f"never landed while watched: {', '.join(unseen)}")
        if self.error:
            parts.append(f"last S3 error while watching: {self.error}")
        return "; ".join(parts)


def _client(url: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=url, config=Config(
        retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30,
        s3={"addressing_style": "path"}))


def _versioned(url: str, bucket: str) -> bool:
    return bool(_client(url).get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled")


def _exists(client: Any, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        client.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if str(error.response.get("Error", {}).get("Code", "")) in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def _remove_marker(client: Any, bucket: str, key: str, version_id: str) -> None:
    """Delete exactly the delete marker ``version_id`` of ``key``: its object version is the latest again.
    A marker already gone is fine."""
    from botocore.exceptions import ClientError

    try:
        client.delete_object(Bucket=bucket, Key=key, VersionId=version_id)
    except ClientError as error:
        if str(error.response.get("Error", {}).get("Code", "")) not in ("404", "NoSuchVersion", "NoSuchKey"):
            raise


def _add_record(undo: UndoLog, *, url: str, bucket: str, keys: tuple[str, ...], ephemeral: bool) -> UndoRecord:
    """``ephemeral``: the store lives only as long as the harness run (the embedded cluster's), so a store
    that no longer answers took the hidden parts with it."""
    return undo.add(kind=UNDO_KIND, description=f"{len(keys)} part(s) hidden in bucket {bucket} at {url}",
                    extra={"url": url, "bucket": bucket, "keys": json.dumps(list(keys)),
                           "ephemeral": "1" if ephemeral else ""})


def _heal_record(record: UndoRecord) -> str:
    """Remove the delete markers of the record's keys made since the record was written (the fault's)."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    url, bucket = record.extra.get("url", ""), record.extra.get("bucket", "")
    try:
        keys = [str(k) for k in json.loads(record.extra.get("keys", "[]"))]
    except ValueError:
        raise HarnessError(f"late-data undo record {record.id} has unreadable keys; restore them by hand") from None
    client = _client(url)
    restored: list[str] = []
    try:
        for key in keys:
            page = client.list_object_versions(Bucket=bucket, Prefix=key)
            for marker in page.get("DeleteMarkers", []):
                if marker["Key"] == key and (
                        marker["LastModified"].timestamp() >= record.created - MARKER_CLOCK_SLACK_SECONDS):
                    _remove_marker(client, bucket, key, str(marker["VersionId"]))
                    restored.append(key)
    except (BotoCoreError, ClientError) as error:
        if isinstance(error, EndpointConnectionError) and record.extra.get("ephemeral"):
            return f"the run's own store at {url} is gone, and the hidden parts with it"
        if isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") == "NoSuchBucket":
            return f"bucket {bucket} is gone, and the hidden parts with it"
        raise HarnessError(f"cannot restore {record.description}: {error}; heal again once S3 answers") from None
    return f"restored {len(restored)} hidden part(s) in bucket {bucket}: {', '.join(restored) or 'none left'}"


register_kind(UNDO_KIND, _heal_record)

LATE_DATA = LateData()
