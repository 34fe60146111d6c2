"""The artifact inventory: every version of every object in the pipeline's bucket.

The duplicate check (``harness.checks.duplicates``) decides from the history and
from this inventory. An overwrite of a key is only visible when the bucket keeps
versions, so the harness calls :func:`prepare_bucket` (create + enable
versioning) before the pipeline runs, and :func:`take_inventory` after it.

Credentials come from the environment as for any boto3 client
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``; moto accepts any value).
boto3 is imported lazily, so the checks can import these dataclasses cheaply.

Measured on moto 5.2.5: ``list_object_versions`` lists versions newest first per
key, with ``VersionId`` ``"null"`` for objects written before versioning was
enabled; a delete of an existing key adds a delete marker (no ETag, no size); a
delete of a missing key adds nothing; ``IfNoneMatch='*'`` still answers 412 on a
versioned bucket, and succeeds when the latest version is a delete marker.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

from harness.errors import ServiceError
from harness.evidence.inventory import Inventory, ObjectVersion
from harness.services.s3 import check_s3_reachable

__all__ = ["ObjectVersion", "Inventory", "prepare_bucket", "take_inventory"]

PAGE_SIZE = 1000  # entries per list_object_versions page (S3's maximum)


def _client(endpoint_url: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30,
                      s3={"addressing_style": "path"}),
    )


def _fail(what: str, endpoint_url: str, bucket: str, error: Exception) -> ServiceError:
    from botocore.exceptions import ClientError, NoCredentialsError

    if isinstance(error, NoCredentialsError):
        return ServiceError(
            f"cannot {what} bucket {bucket} at {endpoint_url}: no AWS credentials; "
            "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (any value for moto)"
        )
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchBucket", "404"):
            return ServiceError(
                f"cannot {what} bucket {bucket} at {endpoint_url}: it does not exist; "
                "call prepare_bucket before the run or check S3_BUCKET"
            )
        return ServiceError(f"cannot {what} bucket {bucket} at {endpoint_url} ({code or error}); "
                            "check the bucket name and the AWS_* credential variables")
    return ServiceError(f"cannot {what} bucket {bucket} at {endpoint_url} ({error}); "
                        "check that the object store is running and the endpoint URL")


def prepare_bucket(*, endpoint_url: str, bucket: str) -> None:
    """Create ``bucket`` if missing and enable versioning on it (idempotent).

    Raises ``ServiceError`` (one line) when the endpoint cannot be reached or
    refuses. Versioning makes every overwrite of a key an extra version the
    duplicate check can see.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    check_s3_reachable(endpoint_url)
    client = _client(endpoint_url)
    try:
        try:
            client.head_bucket(Bucket=bucket)
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code", "")) not in ("404", "NoSuchBucket", "NotFound"):
                raise
            try:
                client.create_bucket(Bucket=bucket)
            except ClientError as create_error:
                if create_error.response.get("Error", {}).get("Code") not in (
                    "BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
        client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    except (BotoCoreError, ClientError) as error:
        raise _fail("prepare (create, enable versioning)", endpoint_url, bucket, error) from None


def take_inventory(*, endpoint_url: str, bucket: str, read_bodies: str | None = None,
                   max_body_bytes: int = 65536) -> Inventory:
    """List every version and delete marker of ``bucket`` (paginated).

    The latest version of each live key matching the regex ``read_bodies`` (and
    no larger than ``max_body_bytes``) is also read into ``Inventory.bodies``;
    ``None`` or "" reads nothing. Raises ``ServiceError`` when S3 cannot be reached or
    the bucket does not exist.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    check_s3_reachable(endpoint_url)
    client = _client(endpoint_url)
    try:
        status = client.get_bucket_versioning(Bucket=bucket).get("Status", "")
        versions = tuple(_list_versions(client, bucket))
        bodies: list[tuple[str, bytes]] = []
        if read_bodies:
            pattern = re.compile(read_bodies)
            for v in versions:
                if v.is_latest and not v.is_delete_marker and v.size <= max_body_bytes and pattern.search(v.key):
                    response = client.get_object(Bucket=bucket, Key=v.key)
                    bodies.append((v.key, response["Body"].read()))
    except (BotoCoreError, ClientError) as error:
        raise _fail("inventory", endpoint_url, bucket, error) from None
    return Inventory(bucket=bucket, taken_at=time.time(), versions=versions, versioned=status == "Enabled",
                     bodies=tuple(bodies))


def _list_versions(client: Any, bucket: str) -> Iterator[ObjectVersion]:
    pages = client.get_paginator("list_object_versions").paginate(Bucket=bucket,
                                                                  PaginationConfig={"PageSize": PAGE_SIZE})
    for page in pages:
        # Versions and delete markers come in separate lists; merge them back per
        # key, newest first (S3 orders both lists by key, then newest first).
        entries = [(item, False) for item in page.get("Versions", [])]
        entries += [(item, True) for item in page.get("DeleteMarkers", [])]
        entries.sort(key=lambda e: (e[0]["Key"], -e[0]["LastModified"].timestamp(), not e[0].get("IsLatest")))
        for item, marker in entries:
            yield ObjectVersion(
                key=item["Key"],
                version_id=str(item.get("VersionId") or "null"),
                size=0 if marker else int(item.get("Size", 0)),
                etag="" if marker else str(item.get("ETag", "")).strip('"'),
                last_modified=item["LastModified"].timestamp(),
                is_latest=bool(item.get("IsLatest")),
                is_delete_marker=marker,
            )
