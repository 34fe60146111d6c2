"""Prometheus and S3 services: start, answer, stop, and clear errors when missing."""

from __future__ import annotations

import json
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from harness import lifecycle
from harness.errors import ServiceError
from harness.services import (
    ExternalS3,
    MotoS3Server,
    PrometheusServer,
    ScrapeTarget,
    check_s3_reachable,
    s3_service,
)
from harness.undo import UndoLog, group_members


@pytest.fixture
def undo(tmp_path: Path) -> UndoLog:
    return UndoLog(tmp_path / "undo")


def query(base: str, promql: str) -> list[dict]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = json.load(resp)
    assert body["status"] == "success"
    return body["data"]["result"]


def test_missing_prometheus_binary(tmp_path: Path, undo: UndoLog) -> None:
    with pytest.raises(ServiceError) as err:
        with PrometheusServer(workdir=tmp_path, undo=undo, binary="prometheus-not-here"):
            pass
    assert str(err.value) == (
        "Prometheus binary 'prometheus-not-here' not found on PATH; "
        "install it with: apt-get install -y --no-install-recommends prometheus"
    )
    assert undo.pending() == []


def test_prometheus_scrapes_file_sd_target(tmp_path: Path, undo: UndoLog) -> None:
    from prometheus_client import Counter, start_http_server
    from prometheus_client.registry import CollectorRegistry

    registry = CollectorRegistry()
    Counter("harness_selftest_ticks", "test counter", registry=registry).inc(5)
    port = lifecycle.free_port()
    server, _thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        with PrometheusServer(workdir=tmp_path / "prom", undo=undo) as prom:
            assert prom.url.startswith("http://127.0.0.1:")
            assert len(undo.pending()) == 2  # the process and its TSDB dir
            prom.set_targets([ScrapeTarget(address=f"127.0.0.1:{port}", labels={"pod": "p-0", "node": "n"})])
            deadline = time.monotonic() + 30
            while not (result := query(prom.url, 'harness_selftest_ticks_total{pod="p-0"}')):
                assert time.monotonic() < deadline, "Prometheus never scraped the target"
                time.sleep(0.2)
            assert float(result[0]["value"][1]) == 5.0
            assert result[0]["metric"]["node"] == "n"
            pid = prom.pid
        assert group_members(pid) == []
        assert undo.pending() == []
        assert not list((tmp_path / "prom").glob("tsdb-*"))
    finally:
        server.shutdown()


def test_prometheus_that_cannot_start_reports_its_log(tmp_path: Path, undo: UndoLog) -> None:
    fake = tmp_path / "bin" / "prometheus"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'err: bad flag' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(ServiceError, match=r"exited with status 3.*err: bad flag"):
        with PrometheusServer(workdir=tmp_path / "p", undo=undo, binary=str(fake)):
            pass
    assert undo.pending() == []


def test_s3_unreachable(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{lifecycle.free_port()}"
    unreachable = rf"^S3 endpoint {url} is unreachable: .*; start it or set HARNESS_S3_ENDPOINT"
    with pytest.raises(ServiceError, match=unreachable):
        check_s3_reachable(url, timeout=2)


def test_external_s3_from_env(tmp_path: Path, undo: UndoLog, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{lifecycle.free_port()}"
    monkeypatch.setenv("HARNESS_S3_ENDPOINT", url)
    service = s3_service(workdir=tmp_path, undo=undo)
    assert isinstance(service, ExternalS3)
    with pytest.raises(ServiceError, match="unreachable"), service:
        pass
    monkeypatch.delenv("HARNESS_S3_ENDPOINT")
    assert isinstance(s3_service(workdir=tmp_path, undo=undo), MotoS3Server)


def test_moto_server_round_trip(tmp_path: Path, undo: UndoLog) -> None:
    import boto3

    with MotoS3Server(workdir=tmp_path, undo=undo) as s3:
        assert s3.endpoint_url.startswith("http://127.0.0.1:")
        check_s3_reachable(s3.endpoint_url)
        client = boto3.client("s3", endpoint_url=s3.endpoint_url, region_name="us-east-1",
                              aws_access_key_id="x", aws_secret_access_key="x")
        client.create_bucket(Bucket="harness-test")
        client.put_object(Bucket="harness-test", Key="k", Body=b"v")
        assert client.get_object(Bucket="harness-test", Key="k")["Body"].read() == b"v"
        pid = s3.pid
        # External S3 also works against a live endpoint.
        with ExternalS3(s3.endpoint_url) as ext:
            assert ext.endpoint_url == s3.endpoint_url
    assert group_members(pid) == []
    assert undo.pending() == []
    assert sys.executable  # moto ran under this interpreter
