"""Each broken variant is caught, and the correct pipeline passes the same scenario.

Real step processes against moto, in a versioned bucket (``prepare_bucket``); the
printed events become the history (``from_json``), the bucket's versions the
inventory, and ``check_duplicates`` judges both. ``no-retry`` is shown failing a
step on one ``503 SlowDown`` that the correct pipeline retries through (the
lead's SLO checks catch it in the storage-throttle experiment).
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import CHECKPOINT_EVERY, DATE, TRAIN_STEPS, Pipeline, Result

from harness.checks.duplicates import check_duplicates
from harness.checks.verdict import CheckResult
from harness.history.events import Event, from_json
from harness.services.inventory import prepare_bucket, take_inventory
from harness.workload.reference import reference_workload
from reference_pipeline import data
from reference_pipeline.config import Config
from reference_pipeline.s3 import Store
from reference_pipeline.steps import Context, features
from tests.moto_s3 import use_test_credentials

SLOW_DOWN = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
             b"<Message>Please reduce your request rate.</Message><RequestId>proxy</RequestId></Error>")


# --- a tiny S3 fault proxy ------------------------------------------------------


@dataclass
class Fault:
    """Answer the next ``times`` requests ``method path~pattern`` with 503 SlowDown;
    ``forward`` first lets the request reach S3 (the write lands, its answer is lost)."""

    method: str
    pattern: str
    forward: bool = False
    times: int = 1
    hits: list[str] = field(default_factory=list)


class FaultProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream = urllib.parse.urlsplit(upstream)
        self.faults: list[Fault] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def take(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and re.search(fault.pattern, path):
                    fault.times -= 1
                    fault.hits.append(path)
                    return fault
        return None


class _Handler(BaseHTTPRequestHandler):
    server: FaultProxy
    protocol_version = "HTTP/1.1"  # answers "Expect: 100-continue" at once (1.0 makes botocore wait 1 s)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            raw = b""
            while True:  # keep the framing: forwarded as is
                line = self.rfile.readline()
                size = int(line.split(b";")[0], 16)
                raw += line + self.rfile.read(size + 2)
                if size == 0:
                    while True:  # trailers end with an empty line
                        trailer = self.rfile.readline()
                        raw += trailer if trailer not in (b"\r\n", b"") else b""
                        if trailer in (b"\r\n", b""):
                            return raw + b"\r\n"
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        up = self.server.upstream
        conn = http.client.HTTPConnection(up.hostname or "127.0.0.1", up.port, timeout=30)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() != "expect":
                    conn.putheader(name, value)
            conn.endheaders(body or None)
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()

    def _handle(self) -> None:
        body = self._body()
        fault = self.server.take(self.command, urllib.parse.urlsplit(self.path).path)
        if fault is not None and fault.forward:
            self._forward(body)  # the write lands; its answer is lost
        if fault is not None:
            self.send_response(503)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(SLOW_DOWN)))
            self.end_headers()
            self.wfile.write(SLOW_DOWN)
            return
        status, headers, payload = self._forward(body)
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


# --- fixtures and helpers ----------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def aws() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        use_test_credentials(patch)
        yield


@pytest.fixture(scope="module")
def proxy(endpoint: str) -> Iterator[FaultProxy]:
    server = FaultProxy(endpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def source(endpoint: str, aws: None) -> Pipeline:
    """A day ingested, featurized and trained (run ``ref``) by the correct pipeline."""
    pipeline = Pipeline(endpoint, "variants-source")
    for step in ("ingest", "features", "train"):
        result = pipeline.run(step, "ref")
        assert result.code == 0, (step, result.stderr)
    return pipeline


def scenario(endpoint: str, name: str, *, copy_from: Pipeline | None = None, keys: tuple[str, ...] = ()) -> Pipeline:
    """A fresh versioned bucket, seeded with copies of ``keys`` of ``copy_from`` (one version each)."""
    pipeline = Pipeline(endpoint, name)
    prepare_bucket(endpoint_url=endpoint, bucket=name)
    for key in keys:
        assert copy_from is not None
        pipeline.s3.copy_object(Bucket=name, Key=key, CopySource={"Bucket": copy_from.bucket, "Key": key})
    return pipeline


def history(*results: Result) -> list[Event]:
    events = []
    for attempt, result in enumerate(results):
        for raw in result.events:
            event = from_json(json.dumps(raw), pod=f"pod-{attempt}", attempt=attempt)
            assert event is not None
            events.append(event)
    return events


def judge(pipeline: Pipeline, endpoint: str, *results: Result) -> CheckResult:
    layout = reference_workload().facts().layout
    inventory = take_inventory(endpoint_url=endpoint, bucket=pipeline.bucket, read_bodies=layout.body_pattern())
    return check_duplicates(history(*results), inventory, layout=layout)


def raw_keys(source: Pipeline) -> tuple[str, ...]:
    return tuple(source.keys(f"raw/reference/date={DATE}/"))


# --- append-features ------------------------------------------------------------------


@pytest.mark.parametrize("broken", ["", "append-features"])
def test_append_features_rerun_is_caught(broken: str, endpoint: str, source: Pipeline) -> None:
    """The daily run and a backfill both run features for the same date."""
    pipeline = scenario(endpoint, f"append{'-broken' if broken else ''}", copy_from=source, keys=raw_keys(source))
    daily = pipeline.run("features", "daily", PIPELINE_BROKEN=broken)
    backfill = pipeline.run("features", "backfill", PIPELINE_BROKEN=broken, RUN_KIND="backfill")
    assert daily.code == 0 and backfill.code == 0, (daily.stderr, backfill.stderr)
    result = judge(pipeline, endpoint, daily, backfill)
    if not broken:
        assert result.verdict == "pass", result.evidence
        assert len(backfill.of("artifact_written")) == 0 and backfill.of("step_skipped")
        return
    assert result.verdict == "fail", result.evidence
    assert "duplicated 16, partial 0" in result.evidence[0]
    line = next(x for x in result.evidence if x.startswith("duplicate"))
    part = rf"features/reference/date={DATE}/entity_shard=00/part-\w+\.npz"
    assert re.fullmatch(rf"duplicate features/{DATE}/00: acknowledged 2 times \({part} by pod-0 attempt 0, "
                        rf"{part} by pod-1 attempt 1\); stored under 2 keys \({part}, {part}\)", line), line


def test_append_features_train_reads_every_part(endpoint: str, source: Pipeline, aws: None) -> None:
    """What train and evaluate load under the variant: every appended part, so rows repeat."""
    pipeline = scenario(endpoint, "append-load", copy_from=source, keys=raw_keys(source))
    for run_id in ("daily", "backfill"):
        assert pipeline.run("features", run_id, PIPELINE_BROKEN="append-features").code == 0

    def load(bucket: str, broken: str) -> list[dict]:
        config = Config.from_env(pipeline.env("daily", S3_BUCKET=bucket, PIPELINE_BROKEN=broken))
        store = Store(endpoint, bucket, on_retries=lambda n: None)
        return features.load(Context(config=config, store=store, metrics=None, step_name="train"))  # type: ignore[arg-type]

    correct, appended = load(source.bucket, ""), load(pipeline.bucket, "append-features")
    assert len(appended) == len(correct) == data.SHARDS
    for shard in range(data.SHARDS):
        assert len(appended[shard]["label"]) == 2 * len(correct[shard]["label"]) > 0


# --- unconditional-publish -----------------------------------------------------------


@pytest.mark.parametrize("broken", ["", "unconditional-publish"])
def test_unconditional_publish_retried_put_is_caught(broken: str, endpoint: str, proxy: FaultProxy) -> None:
    """register's PUT of the run record lands, but its answer is lost (503): botocore retries it."""
    name = f"publish{'-broken' if broken else ''}"
    pipeline = scenario(endpoint, name)
    prefix = f"runs/reference/{DATE}/r1"
    pipeline.s3.put_object(Bucket=name, Key=f"{prefix}/evaluation.json",
                           Body=json.dumps({"metric": "auc", "value": 0.9, "model_key": "m"}).encode())
    fault = Fault("PUT", rf"^/{name}/registry/reference/runs/r1\.json$", forward=True)
    proxy.faults.append(fault)
    register = Pipeline(proxy.url, name).run("register", "r1", PIPELINE_BROKEN=broken)
    assert register.code == 0, register.stderr
    assert fault.hits, "the fault never fired"
    result = judge(pipeline, endpoint, register)
    if not broken:
        # The retried conditional PUT gets 412 and the run is found registered: one version.
        assert result.verdict == "pass", result.evidence
        return
    assert result.verdict == "fail", result.evidence
    assert "duplicated 1, partial 0" in result.evidence[0]
    assert any(x.startswith("duplicate model_version/r1: overwritten: registry/reference/runs/r1.json has 2 versions")
               for x in result.evidence), result.evidence


def test_correct_register_with_a_lost_answer_to_the_version_put(endpoint: str, proxy: FaultProxy) -> None:
    """When the answer to the version PUT is lost, botocore's retry gets 412; register reads that
    version, finds its own run id in it, and keeps it: one version for the run."""
    name = "publish-version-lost"
    pipeline = scenario(endpoint, name)
    pipeline.s3.put_object(Bucket=name, Key=f"runs/reference/{DATE}/r1/evaluation.json",
                           Body=json.dumps({"metric": "auc", "value": 0.9, "model_key": "m"}).encode())
    fault = Fault("PUT", rf"^/{name}/registry/reference/versions/", forward=True)
    proxy.faults.append(fault)
    register = Pipeline(proxy.url, name).run("register", "r1")
    assert register.code == 0, register.stderr
    assert fault.hits, "the fault never fired"
    assert register.of("model_registered")[0]["version"] == 1
    result = judge(pipeline, endpoint, register)
    assert result.verdict == "pass", result.evidence


# --- no-retry -------------------------------------------------------------------------------


@pytest.mark.parametrize("broken", ["", "no-retry"])
def test_no_retry_fails_the_step_on_one_slow_down(broken: str, endpoint: str, proxy: FaultProxy) -> None:
    name = f"retry{'-broken' if broken else ''}"
    pipeline = scenario(endpoint, name)
    fault = Fault("PUT", rf"^/{name}/raw/")
    proxy.faults.append(fault)
    ingest = Pipeline(proxy.url, name).run("ingest", "r1", PIPELINE_BROKEN=broken)
    assert len(fault.hits) == 1
    if not broken:
        assert ingest.code == 0, ingest.stderr
        assert len(pipeline.keys("raw/")) == data.HOURS
        assert judge(pipeline, endpoint, ingest).verdict == "pass"
        return
    assert ingest.code not in (0, 2, 3, 143), ingest.stderr  # a crash, not a user error or a gate
    assert "SlowDown" in ingest.stderr and "PutObject" in ingest.stderr
    assert not ingest.of("step_finished")


# --- restore-without-manifest ------------------------------------------------------


def _partial_first_checkpoint(endpoint: str, source: Pipeline, name: str) -> tuple[Pipeline, str]:
    """An earlier attempt died uploading its first checkpoint: step 10's state.pt is there, no manifest."""
    state = f"runs/reference/{DATE}/ref/checkpoints/step-{CHECKPOINT_EVERY:06d}/state.pt"
    assert CHECKPOINT_EVERY < TRAIN_STEPS
    keys = raw_keys(source) + tuple(source.keys(f"features/reference/date={DATE}/")) + (state,)
    return scenario(endpoint, name, copy_from=source, keys=keys), state


def test_restore_without_manifest_is_caught(endpoint: str, source: Pipeline) -> None:
    pipeline, state = _partial_first_checkpoint(endpoint, source, "restore-broken")
    train = pipeline.run("train", "ref", PIPELINE_BROKEN="restore-without-manifest")
    assert train.code == 0, train.stderr
    assert train.of("checkpoint_restored")[0]["manifest_key"] == state
    result = judge(pipeline, endpoint, train)
    assert result.verdict == "fail", result.evidence
    assert (f"partial checkpoint restored: pod-0 restored step {CHECKPOINT_EVERY} of ref from {state}, "
            "which is a checkpoint's state, not its manifest") in result.evidence


def test_correct_pipeline_ignores_the_partial_checkpoint_and_completes_it(endpoint: str, source: Pipeline) -> None:
    """The correct pipeline restores nothing incomplete. Its own save of step 10 then finds the leftover
    state.pt with the same bytes (every RNG the checkpoint holds is seeded from SEED, so two processes
    serialize the same state identically) and writes the manifest beside it: no partial is left."""
    pipeline, state = _partial_first_checkpoint(endpoint, source, "restore")
    train = pipeline.run("train", "ref")
    assert train.code == 0, train.stderr
    assert train.of("checkpoint_restored") == [] and train.of("training_started")[0]["start_step"] == 0
    assert "exists with different content" not in train.stderr
    manifest = state.replace("state.pt", "MANIFEST.json")
    assert manifest in [e["manifest_key"] for e in train.of("checkpoint_saved")]
    result = judge(pipeline, endpoint, train)
    assert result.verdict == "pass", result.evidence
    assert not [x for x in result.evidence if x.startswith("partial")], result.evidence
    assert "duplicated 0, partial 0" in result.evidence[0]
