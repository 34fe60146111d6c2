"""The artifact inventory against a moto S3 server: versioning, overwrites, delete markers."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest

from harness.errors import ServiceError
from harness.lifecycle import free_port
from harness.services import inventory as inventory_module
from harness.services.inventory import prepare_bucket, take_inventory
from tests.moto_s3 import moto_s3, use_test_credentials


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_s3() as url:
        yield url


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    use_test_credentials(monkeypatch)


def client(endpoint: str):  # type: ignore[no-untyped-def]
    return boto3.client("s3", endpoint_url=endpoint)


def test_prepare_bucket_creates_it_versioned_and_is_idempotent(endpoint: str) -> None:
    prepare_bucket(endpoint_url=endpoint, bucket="inv-new")
    prepare_bucket(endpoint_url=endpoint, bucket="inv-new")
    assert client(endpoint).get_bucket_versioning(Bucket="inv-new")["Status"] == "Enabled"
    inventory = take_inventory(endpoint_url=endpoint, bucket="inv-new")
    assert inventory.versioned and inventory.versions == () and inventory.bucket == "inv-new"


def test_prepare_bucket_enables_versioning_on_an_existing_bucket(endpoint: str) -> None:
    s3 = client(endpoint)
    s3.create_bucket(Bucket="inv-old")
    s3.put_object(Bucket="inv-old", Key="before", Body=b"1")
    assert not take_inventory(endpoint_url=endpoint, bucket="inv-old").versioned
    prepare_bucket(endpoint_url=endpoint, bucket="inv-old")
    inventory = take_inventory(endpoint_url=endpoint, bucket="inv-old")
    assert inventory.versioned
    assert [(v.key, v.version_id) for v in inventory.versions] == [("before", "null")]


def test_an_overwrite_shows_two_versions_and_a_delete_a_marker(endpoint: str) -> None:
    prepare_bucket(endpoint_url=endpoint, bucket="inv-ops")
    s3 = client(endpoint)
    s3.put_object(Bucket="inv-ops", Key="a/model.pt", Body=b"one", IfNoneMatch="*")
    s3.put_object(Bucket="inv-ops", Key="a/model.pt", Body=b"second")
    s3.put_object(Bucket="inv-ops", Key="b/gone.json", Body=b"x")
    s3.delete_object(Bucket="inv-ops", Key="b/gone.json")
    inventory = take_inventory(endpoint_url=endpoint, bucket="inv-ops")
    assert inventory.keys() == ("a/model.pt", "b/gone.json")
    assert inventory.live_keys() == ("a/model.pt",)
    model = inventory.versions_of("a/model.pt")
    assert [(v.size, v.is_latest, v.is_delete_marker) for v in model] == [(6, True, False), (3, False, False)]
    assert model[0].version_id != model[1].version_id and all(len(v.etag) == 32 for v in model)
    gone = inventory.versions_of("b/gone.json")
    assert [(v.is_latest, v.is_delete_marker) for v in gone] == [(True, True), (False, False)]
    assert gone[0].etag == "" and gone[0].size == 0
    assert all(v.last_modified > 1e9 for v in inventory.versions)


def test_listing_is_paginated_and_registry_versions_are_read(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inventory_module, "PAGE_SIZE", 2)
    prepare_bucket(endpoint_url=endpoint, bucket="inv-many")
    s3 = client(endpoint)
    for i in range(5):
        s3.put_object(Bucket="inv-many", Key=f"k/{i}", Body=b"")
    s3.put_object(Bucket="inv-many", Key="k/1", Body=b"again")
    s3.delete_object(Bucket="inv-many", Key="k/3")
    s3.put_object(Bucket="inv-many", Key="registry/ref/versions/000001.json",
                  Body=json.dumps({"version": 1, "run_id": "r1"}).encode())
    inventory = take_inventory(endpoint_url=endpoint, bucket="inv-many", read_bodies=r"^registry/[^/]+/versions/")
    assert len(inventory.versions) == 8
    assert len(inventory.versions_of("k/1")) == 2 and inventory.versions_of("k/3")[0].is_delete_marker
    assert json.loads(inventory.body_of("registry/ref/versions/000001.json") or b"")["run_id"] == "r1"
    assert inventory.body_of("k/0") is None


def test_unreachable_endpoint_is_a_service_error() -> None:
    port = free_port()  # closed again: nothing listens there
    url = f"http://127.0.0.1:{port}"
    for call in (prepare_bucket, take_inventory):
        with pytest.raises(ServiceError) as info:
            call(endpoint_url=url, bucket="x-bucket")
        message = str(info.value)
        assert url in message and "unreachable" in message and "\n" not in message


def test_missing_bucket_is_a_service_error(endpoint: str) -> None:
    with pytest.raises(ServiceError, match="does not exist; call prepare_bucket"):
        take_inventory(endpoint_url=endpoint, bucket="inv-missing")
