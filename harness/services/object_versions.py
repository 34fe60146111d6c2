"""Replace an object in a versioned bucket so that the replacement can be taken back without a trace.

A fault that damages a stored object (:mod:`harness.faults.checkpoint_corruption`) writes its damaged
bytes as a *new version* of the key, marked with user metadata ``mlchaos-fault: <mark>``. Taking it
back deletes exactly the marked versions (``DeleteObject`` with ``VersionId``): the pipeline's own
version is the latest again, and the bucket's version list (the inventory the duplicate check reads)
shows only what the pipeline wrote. That needs versioning: without it a PUT destroys the original.

The ``s3-marked-version`` undo kind lets ``mlchaos heal`` take back marked versions a killed harness
left behind; the record names endpoint, bucket, key and mark, so it is written before the PUT.

boto3 is imported lazily; credentials come from the environment (``AWS_*``; any value for moto).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.errors import HarnessError, ServiceError
from harness.undo import UndoLog, UndoRecord, register_kind

__all__ = ["KIND", "MARK_KEY", "StoreGone", "StoredVersion", "VersionedBucket", "add_marked_version_record"]

KIND = "s3-marked-version"
MARK_KEY = "mlchaos-fault"  # user metadata (x-amz-meta-mlchaos-fault) on a version a fault wrote


class StoreGone(ServiceError):
    """The endpoint does not answer or the bucket no longer exists: whatever a fault wrote there is gone too."""


@dataclass(frozen=True)
class StoredVersion:
    """The latest version of a key: its bytes and version id ("null" when written before versioning)."""

    key: str
    body: bytes
    version_id: str


@dataclass(frozen=True)
class VersionedBucket:
    """One bucket at one endpoint, for the harness's own reads and marked writes."""

    endpoint_url: str
    bucket: str

    def _client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint_url, config=Config(
            retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30,
            s3={"addressing_style": "path"}))

    def _call(self, what: str, method: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

        try:
            return getattr(self._client(), method)(Bucket=self.bucket, **kwargs)
        except EndpointConnectionError:
            raise StoreGone(f"cannot {what}: nothing answers at {self.endpoint_url}") from None
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "NoSuchBucket":
                raise StoreGone(f"cannot {what}: bucket {self.bucket} is gone from {self.endpoint_url}") from None
            raise ServiceError(f"cannot {what} in bucket {self.bucket} at {self.endpoint_url} ({code or error})"
                               ) from None
        except BotoCoreError as error:
            raise ServiceError(f"cannot {what} in bucket {self.bucket} at {self.endpoint_url} ({error}); "
                               "check the endpoint and the AWS_* credential variables") from None

    def versioned(self) -> bool:
        """Whether the bucket keeps versions (needed to take a replacement back)."""
        return bool(self._call("read the versioning", "get_bucket_versioning").get("Status", "") == "Enabled")

    def list_keys(self, prefix: str) -> list[str]:
        """The live keys under ``prefix``, sorted."""
        keys: list[str] = []
        token: dict[str, str] = {}
        while True:
            page = self._call(f"list {prefix}", "list_objects_v2", Prefix=prefix, **token)
            keys += [str(item["Key"]) for item in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return sorted(keys)
            token = {"ContinuationToken": str(page["NextContinuationToken"])}

    def read(self, key: str) -> StoredVersion:
        """The latest version of ``key``; ServiceError when there is none."""
        response = self._call(f"read {key}", "get_object", Key=key)
        return StoredVersion(key=key, body=response["Body"].read(), version_id=str(response.get("VersionId") or "null"))

    def put_marked(self, key: str, body: bytes, *, mark: str) -> str:
        """Write ``body`` as a new version of ``key`` marked with ``mark``; returns its version id."""
        response = self._call(f"write {key}", "put_object", Key=key, Body=body, Metadata={MARK_KEY: mark})
        return str(response.get("VersionId") or "null")

    def remove_marked(self, key: str, *, mark: str) -> list[str]:
        """Delete every version of ``key`` marked with ``mark``; returns their ids (none: already done)."""
        listing = self._call(f"list the versions of {key}", "list_object_versions", Prefix=key)
        removed: list[str] = []
        for version in listing.get("Versions", []):
            if version["Key"] != key:
                continue  # a longer key sharing the prefix
            version_id = str(version["VersionId"])
            head = self._call(f"read {key} version {version_id}", "head_object", Key=key, VersionId=version_id)
            if head.get("Metadata", {}).get(MARK_KEY) == mark:
                self._call(f"delete {key} version {version_id}", "delete_object", Key=key, VersionId=version_id)
                removed.append(version_id)
        return removed


def add_marked_version_record(undo: UndoLog, *, bucket: VersionedBucket, key: str, mark: str) -> UndoRecord:
    """Record, before writing it, that a version of ``key`` marked ``mark`` will be written."""
    return undo.add(kind=KIND, description=f"version of s3://{bucket.bucket}/{key} written by fault {mark}",
                    extra={"endpoint_url": bucket.endpoint_url, "bucket": bucket.bucket, "key": key, "mark": mark})


def _heal_marked_version(record: UndoRecord) -> str:
    extra = record.extra
    if not all(extra.get(name) for name in ("endpoint_url", "bucket", "key", "mark")):
        raise HarnessError(f"undo record {record.id} lacks endpoint_url, bucket, key or mark")
    bucket = VersionedBucket(extra["endpoint_url"], extra["bucket"])
    try:
        removed = bucket.remove_marked(extra["key"], mark=extra["mark"])
    except StoreGone as gone:  # a moto server dies with the harness that started it, its objects with it
        return f"{record.description}: {gone}; the version went with the store"
    if not removed:
        return f"{record.description}: nothing left to remove"
    return f"{record.description}: removed version(s) {', '.join(removed)}; the pipeline's version is current again"


register_kind(KIND, _heal_marked_version)
