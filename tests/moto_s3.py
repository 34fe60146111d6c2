"""A moto S3 server for tests that need a real S3 API but no cluster."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from moto.server import ThreadedMotoServer

from harness.lifecycle import free_port

__all__ = ["moto_s3", "use_test_credentials"]


@contextmanager
def moto_s3() -> Iterator[str]:
    """A moto S3 server on a free loopback port for the life of the block; yields its URL.

    moto keeps its buckets in the process, not in the server: every server of a test session sees the same
    buckets, so each test module names its own uniquely."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def use_test_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake credentials boto3 needs to talk to moto, set for one test."""
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
