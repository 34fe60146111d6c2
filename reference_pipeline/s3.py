"""The object store: boto3 with retries, and the conditional writes that make
every publish atomic and idempotent.

Only conditional ``PutObject`` is used for publishing (``IfNoneMatch='*'`` to
create, ``IfMatch=<etag>`` to replace): moto, like some S3 implementations, does
not enforce conditions on ``CopyObject``, so a copy is never a safe promotion.
The same conditional writes (plus a conditional ``DeleteObject``) carry the
training lease (``lease.py``), so it shares this client, endpoint and retries.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import socket
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from .errors import UserError

_CONFLICT = ("PreconditionFailed", "412", "ConditionalRequestConflict")
_MISSING = ("NoSuchKey", "404", "NotFound")


@dataclass(frozen=True)
class Object:
    """An object's bytes and the ETag to use for an ``IfMatch`` replace.

    ``last_modified`` and ``server_time`` (the answer's ``Date`` header) both come
    from the S3 server's clock, so their difference is an age that no client clock
    enters; either is None when the server did not send it.
    """

    body: bytes
    etag: str
    last_modified: dt.datetime | None = None
    server_time: dt.datetime | None = None


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
        retries = (BotoConfig(retries={"max_attempts": 10, "mode": "standard"}) if retry
                   else BotoConfig(retries={"total_max_attempts": 1, "mode": "standard"}))
        config = retries.merge(BotoConfig(connect_timeout=5, read_timeout=30, s3={"addressing_style": "path"}))
        self._client = boto3.client("s3", endpoint_url=endpoint_url, config=config)

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
        return self._put(key, body, IfNoneMatch="*") is not None

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
        return self._put(key, body, IfMatch=etag) is not None

    def create(self, key: str, body: bytes) -> str | None:
        """:meth:`put_if_absent` that answers the new object's ETag; None if ``key`` existed."""
        return self._put(key, body, IfNoneMatch="*")

    def replace(self, key: str, body: bytes, etag: str) -> str | None:
        """:meth:`put_if_match` that answers the new ETag; None if ``key`` has another ETag or is gone."""
        return self._put(key, body, missing_is_conflict=True, IfMatch=etag)

    def delete_if_match(self, key: str, etag: str) -> bool:
        """Delete ``key`` only if it still has ``etag``: True when deleted (or already
        gone), False when it has another ETag (someone replaced it; left untouched)."""
        try:
            self._call("delete_object", Bucket=self.bucket, Key=key, IfMatch=etag)
        except ClientError as error:
            if _code(error) in _CONFLICT:
                return False
            if _code(error) in _MISSING:
                return True
            raise
        return True

    def _put(self, key: str, body: bytes, *, missing_is_conflict: bool = False, **condition: str) -> str | None:
        """A conditional PUT: the new ETag, or None when the condition failed (412;
        with ``missing_is_conflict``, also 404, the answer to ``IfMatch`` on a gone key)."""
        try:
            response = self._call("put_object", Bucket=self.bucket, Key=key, Body=body, **condition)
        except ClientError as error:
            if _code(error) in _CONFLICT or (missing_is_conflict and _code(error) in _MISSING):
                return None
            raise
        return str(response["ETag"])

    def get(self, key: str) -> Object | None:
        """The object at ``key``, or None if there is none."""
        try:
            response = self._call("get_object", Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _code(error) in ("NoSuchKey", "404"):
                return None
            raise
        return Object(body=response["Body"].read(), etag=response["ETag"],
                      last_modified=response.get("LastModified"), server_time=_server_time(response))

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


def _server_time(response: dict[str, Any]) -> dt.datetime | None:
    """The S3 server's clock when it answered: the ``Date`` response header."""
    raw = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if not raw:
        return None
    try:
        return email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
