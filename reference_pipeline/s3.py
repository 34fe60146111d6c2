"""The object store: boto3 with retries, and the conditional writes that make
every publish atomic and idempotent.

Only conditional ``PutObject`` is used for publishing (``IfNoneMatch='*'`` to
create, ``IfMatch=<etag>`` to replace): moto, like some S3 implementations, does
not enforce conditions on ``CopyObject``, so a copy is never a safe promotion.
"""

from __future__ import annotations

import socket
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from .errors import UserError


@dataclass(frozen=True)
class Object:
    """An object's bytes and the ETag to use for an ``IfMatch`` replace."""

    body: bytes
    etag: str


class Store:
    """One bucket. ``on_retries`` is told how many retries each request needed."""

    def __init__(
        self,
        endpoint_url: str,
        bucket: str,
        on_retries: Callable[[int], None],
        *,
        retry: bool = True,
        unconditional_publish: bool = False,
    ) -> None:
        """``retry=False`` (broken variant ``no-retry``) makes one attempt per request;
        ``unconditional_publish=True`` (broken variant ``unconditional-publish``)
        makes :meth:`publish` a plain PUT."""
        self.endpoint_url = endpoint_url
        self.bucket = bucket
        self._on_retries = on_retries
        self._unconditional_publish = unconditional_publish
        retries: dict[str, Any] = (
            {"max_attempts": 10, "mode": "standard"} if retry else {"total_max_attempts": 1, "mode": "standard"}
        )
        self._client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            config=BotoConfig(
                retries=retries,  # type: ignore[arg-type]
                connect_timeout=5,
                read_timeout=30,
                s3={"addressing_style": "path"},
            ),
        )

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """Run one client operation, counting the retries botocore made for it."""
        try:
            response: dict[str, Any] = getattr(self._client, operation)(**kwargs)
        except ClientError as error:
            self._on_retries(error.response.get("ResponseMetadata", {}).get("RetryAttempts", 0))
            raise
        self._on_retries(response.get("ResponseMetadata", {}).get("RetryAttempts", 0))
        return response

    def ensure_bucket(self) -> None:
        """Create the bucket if missing. Raises ``UserError`` if S3 cannot be reached.

        A plain TCP probe first: botocore's standard retries back off for over a
        minute on a refused connection, far too long to report a wrong URL.
        """
        url = urllib.parse.urlsplit(self.endpoint_url)
        port = url.port or (443 if url.scheme == "https" else 80)
        for attempt in range(6):
            try:
                socket.create_connection((url.hostname or "localhost", port), timeout=5).close()
                break
            except OSError as error:
                if attempt == 5:
                    raise UserError(
                        f"S3 is unreachable at {self.endpoint_url} ({error}); "
                        "check S3_ENDPOINT_URL and that the object store is running"
                    ) from None
                time.sleep(0.5)
        try:
            self._call("head_bucket", Bucket=self.bucket)
            return
        except ClientError as error:
            if _code(error) not in ("404", "NoSuchBucket", "NotFound"):
                raise UserError(f"cannot access bucket {self.bucket} at {self.endpoint_url}: {error}") from None
        except BotoCoreError as error:
            raise UserError(f"cannot use S3 at {self.endpoint_url} ({error}); "
                            "check S3_ENDPOINT_URL and the AWS_* credential variables") from None
        try:
            self._call("create_bucket", Bucket=self.bucket)
        except ClientError as error:
            # Another step process created it between our HEAD and CREATE.
            if _code(error) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise UserError(f"cannot create bucket {self.bucket!r} at {self.endpoint_url} ({_code(error)}); "
                                "set S3_BUCKET to a valid bucket name") from None

    def put_if_absent(self, key: str, body: bytes) -> bool:
        """Create ``key`` atomically. False if it already existed (left untouched)."""
        return self._put(key, body, IfNoneMatch="*")

    def publish(self, key: str, body: bytes) -> bool:
        """Publish a final artifact once: :meth:`put_if_absent`, except in the broken
        variant ``unconditional-publish``, where it is a plain PUT that overwrites
        (and always answers True)."""
        if self._unconditional_publish:
            self._call("put_object", Bucket=self.bucket, Key=key, Body=body)
            return True
        return self.put_if_absent(key, body)

    def put_if_match(self, key: str, body: bytes, etag: str) -> bool:
        """Replace ``key`` only if it still has ``etag``. False if someone changed it."""
        return self._put(key, body, IfMatch=etag)

    def _put(self, key: str, body: bytes, **condition: str) -> bool:
        try:
            self._call("put_object", Bucket=self.bucket, Key=key, Body=body, **condition)
        except ClientError as error:
            if _code(error) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                return False
            raise
        return True

    def get(self, key: str) -> Object | None:
        """The object at ``key``, or None if there is none."""
        try:
            response = self._call("get_object", Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _code(error) in ("NoSuchKey", "404"):
                return None
            raise
        return Object(body=response["Body"].read(), etag=response["ETag"])

    def exists(self, key: str) -> bool:
        try:
            self._call("head_object", Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _code(error) in ("NoSuchKey", "404", "NotFound"):
                return False
            raise
        return True

    def list_keys(self, prefix: str) -> list[str]:
        """All keys under ``prefix``, sorted."""
        keys: list[str] = []
        token: dict[str, str] = {}
        while True:
            response = self._call("list_objects_v2", Bucket=self.bucket, Prefix=prefix, **token)
            keys.extend(item["Key"] for item in response.get("Contents", []))
            if not response.get("IsTruncated"):
                return sorted(keys)
            token = {"ContinuationToken": response["NextContinuationToken"]}

    def delete(self, key: str) -> None:
        self._call("delete_object", Bucket=self.bucket, Key=key)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
