"""The pipeline's S3 bucket: boto3 with retries, plus the conditional writes that keep artifacts single.

``put_new`` (``If-None-Match: *``) creates an object only if its key is free: a retried or concurrent
writer of the same artifact gets ``False`` and leaves the first copy alone. ``replace`` and
``delete_if_match`` (``If-Match``) change an object only while it is the version the caller last saw.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from config import Config

# Codes S3 (and moto) answer when a precondition does not hold; 404 is IfMatch on a gone key.
_CONFLICT = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
_MISSING = {"NoSuchKey", "404", "NotFound"}


@dataclass(frozen=True, kw_only=True)
class Blob:
    """An object's bytes and the ETag that names this version of it."""

    body: bytes
    etag: str


class Bucket:
    """One bucket; ``on_retries`` is told how many retries botocore needed for each request."""

    def __init__(self, config: Config, on_retries: Callable[[int], None] = lambda n: None) -> None:
        self.name = config.bucket
        self._on_retries = on_retries
        self._client = boto3.client(
            "s3",
            endpoint_url=config.endpoint_url,
            # Standard mode retries 5xx, SlowDown and connection errors with jittered backoff.
            config=BotoConfig(retries={"mode": "standard", "max_attempts": 10}, connect_timeout=5,
                              read_timeout=30),
        )

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response: dict[str, Any] = getattr(self._client, operation)(Bucket=self.name, **kwargs)
        except ClientError as error:
            self._on_retries(int(error.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)))
            raise
        self._on_retries(int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0)))
        return response

    def put_new(self, key: str, body: bytes) -> bool:
        """Create ``key``; ``False`` (nothing written) when it already exists."""
        try:
            self._call("put_object", Key=key, Body=body, IfNoneMatch="*")
        except ClientError as error:
            if _code(error) in _CONFLICT:
                return False
            raise
        return True

    def put(self, key: str, body: bytes) -> None:
        """Write ``key`` whatever is there (a new version when it exists)."""
        self._call("put_object", Key=key, Body=body)

    def replace(self, key: str, body: bytes, etag: str) -> str | None:
        """Overwrite ``key`` if it is still the version ``etag``; the new ETag, or ``None`` when it is not."""
        try:
            response = self._call("put_object", Key=key, Body=body, IfMatch=etag)
        except ClientError as error:
            if _code(error) in _CONFLICT | _MISSING:
                return None
            raise
        return str(response["ETag"])

    def delete_if_match(self, key: str, etag: str) -> bool:
        """Delete ``key`` if it is still the version ``etag``."""
        try:
            self._call("delete_object", Key=key, IfMatch=etag)
        except ClientError as error:
            if _code(error) in _CONFLICT | _MISSING:
                return False
            raise
        return True

    def get(self, key: str) -> Blob | None:
        try:
            response = self._call("get_object", Key=key)
        except ClientError as error:
            if _code(error) in _MISSING:
                return None
            raise
        return Blob(body=response["Body"].read(), etag=str(response["ETag"]))

    def exists(self, key: str) -> bool:
        try:
            self._call("head_object", Key=key)
        except ClientError as error:
            if _code(error) in _MISSING:
                return False
            raise
        return True

    def keys(self, prefix: str) -> list[str]:
        found: list[str] = []
        token: dict[str, str] = {}
        while True:
            response = self._call("list_objects_v2", Prefix=prefix, **token)
            found += [str(item["Key"]) for item in response.get("Contents", [])]
            if not response.get("IsTruncated"):
                return sorted(found)
            token = {"ContinuationToken": str(response["NextContinuationToken"])}


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
