"""Where nights are kept: a local folder, or an S3 prefix (moto in-process)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from harness.errors import HarnessError
from harness.gameday.model import NightSummary
from harness.gameday.results import LocalResults, S3Results, open_results
from harness.gameday.summary_file import write_summary
from tests.gameday.test_summary_file import night
from tests.moto_s3 import use_test_credentials

BUCKET = "gamedays"


def night_folder(parent: Path, summary: NightSummary) -> Path:
    """A finished night folder as ``mlchaos gameday`` leaves it (the parts the stores care about)."""
    folder = parent / summary.night
    (folder / "runs" / "r1").mkdir(parents=True)
    (folder / "runs" / "r1" / "history.jsonl").write_text('{"type": "TrainStep"}\n')
    (folder / "report.html").write_text("<html></html>")
    (folder / "schedule.json").write_text("{}\n")
    write_summary(summary, folder / "summary.json")
    return folder


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a region, so nothing reaches for a real account."""
    use_test_credentials(monkeypatch)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def s3(aws_env: None) -> Iterator[None]:
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield


# --- local ---------------------------------------------------------------------------------


def test_local_save_copies_a_night_in_and_lists_it(tmp_path: Path) -> None:
    folder = night_folder(tmp_path / "work", night(1))
    store = LocalResults(tmp_path / "store")
    where = store.save(folder)
    assert where == str(tmp_path / "store" / "night-001")
    copied = tmp_path / "store" / "night-001"
    assert sorted(p.relative_to(copied).as_posix() for p in copied.rglob("*") if p.is_file()) == [
        "report.html", "runs/r1/history.jsonl", "schedule.json", "summary.json"]
    assert store.summaries() == [night(1)]
    assert store.save(folder) == where  # saving again overwrites in place
    assert store.summaries() == [night(1)]


def test_local_save_leaves_a_night_already_under_the_root_alone(tmp_path: Path) -> None:
    store = LocalResults(tmp_path / "store")
    folder = night_folder(tmp_path / "store", night(1))
    assert store.save(folder) == str(folder)
    assert [p.name for p in (tmp_path / "store").iterdir()] == ["night-001"]


def test_local_save_refuses_an_unfinished_night(tmp_path: Path) -> None:
    folder = tmp_path / "work" / "night-001"
    folder.mkdir(parents=True)
    with pytest.raises(HarnessError, match="has no summary.json"):
        LocalResults(tmp_path / "store").save(folder)


def test_local_summaries_are_oldest_first_by_start_and_skip_unfinished_folders(tmp_path: Path) -> None:
    root = tmp_path / "store"
    # Names sorting against their start times: the order must come from started_at.
    for summary in (night(3, name="a"), night(1, name="c"), night(2, name="b")):
        night_folder(root, summary)
    (root / "in-progress").mkdir()
    (root / "trend.html").write_text("")
    assert [s.night for s in LocalResults(root).summaries()] == ["c", "b", "a"]


def test_local_summaries_of_a_missing_root_are_empty(tmp_path: Path) -> None:
    assert LocalResults(tmp_path / "nowhere").summaries() == []


def test_a_malformed_stored_summary_is_a_harness_error(tmp_path: Path) -> None:
    folder = night_folder(tmp_path / "store", night(1))
    (folder / "summary.json").write_text("{}")
    with pytest.raises(HarnessError, match=r"night-001/summary.json is malformed: schema_version is missing"):
        LocalResults(tmp_path / "store").summaries()


def test_open_results_chooses_by_the_s3_prefix(tmp_path: Path) -> None:
    local = open_results(str(tmp_path))
    assert isinstance(local, LocalResults) and local.root == tmp_path
    remote = open_results("s3://bucket/a/b/", endpoint_url="http://127.0.0.1:9000")
    assert isinstance(remote, S3Results)
    assert (remote.bucket, remote.prefix, remote.endpoint_url) == ("bucket", "a/b", "http://127.0.0.1:9000")
    assert LocalResults().root == Path("reports/gamedays")


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix"])
def test_an_s3_url_without_a_bucket_is_refused(url: str) -> None:
    with pytest.raises(HarnessError, match="names no bucket"):
        S3Results(url)


# --- S3 ------------------------------------------------------------------------------------


def test_s3_save_uploads_every_file_under_the_night(tmp_path: Path, s3: None) -> None:
    store = S3Results(f"s3://{BUCKET}/nightly/")
    assert store.save(night_folder(tmp_path, night(1))) == f"s3://{BUCKET}/nightly/night-001/"
    client = boto3.client("s3")
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=BUCKET)["Contents"])
    assert keys == [f"nightly/night-001/{name}" for name in
                    ("report.html", "runs/r1/history.jsonl", "schedule.json", "summary.json")]
    page = client.get_object(Bucket=BUCKET, Key="nightly/night-001/report.html")
    assert page["ContentType"] == "text/html" and page["Body"].read() == b"<html></html>"


def test_s3_summaries_round_trip_oldest_first(tmp_path: Path, s3: None) -> None:
    store = open_results(f"s3://{BUCKET}/nightly")
    for summary in (night(2, name="b"), night(1, name="c"), night(3, name="a", mttr_p95=None)):
        store.save(night_folder(tmp_path, summary))
    client = boto3.client("s3")
    # Not nights: a folder still uploading (no summary.json yet), and a file beside the nights.
    client.put_object(Bucket=BUCKET, Key="nightly/partial/report.html", Body=b"")
    client.put_object(Bucket=BUCKET, Key="nightly/trend.html", Body=b"")
    client.put_object(Bucket=BUCKET, Key="other/x/summary.json", Body=b"{}")
    assert store.summaries() == [night(1, name="c"), night(2, name="b"), night(3, name="a", mttr_p95=None)]


def test_s3_without_a_prefix_keeps_nights_at_the_bucket_root(tmp_path: Path, s3: None) -> None:
    store = S3Results(f"s3://{BUCKET}")
    assert store.save(night_folder(tmp_path, night(1))) == f"s3://{BUCKET}/night-001/"
    assert store.summaries() == [night(1)]
    assert S3Results(f"s3://{BUCKET}/empty").summaries() == []


def test_a_malformed_s3_summary_names_its_url(s3: None) -> None:
    boto3.client("s3").put_object(Bucket=BUCKET, Key="n/night-001/summary.json", Body=b"nope")
    with pytest.raises(HarnessError, match=f"s3://{BUCKET}/n/night-001/summary.json is not JSON"):
        S3Results(f"s3://{BUCKET}/n").summaries()


def test_a_missing_bucket_says_to_create_it(tmp_path: Path, s3: None) -> None:
    store = S3Results("s3://no-such-bucket/nightly")
    with pytest.raises(HarnessError, match=r"create the bucket \(aws s3 mb s3://no-such-bucket\)") as caught:
        store.summaries()
    assert "\n" not in str(caught.value)
    with pytest.raises(HarnessError, match="cannot upload .* to s3://no-such-bucket/nightly"):
        store.save(night_folder(tmp_path, night(1)))


def test_an_unreachable_endpoint_is_a_harness_error_quickly(tmp_path: Path, aws_env: None) -> None:
    store = S3Results(f"s3://{BUCKET}/nightly", endpoint_url="http://127.0.0.1:9", connect_timeout=1,
                      max_attempts=1)
    began = time.monotonic()
    with pytest.raises(HarnessError) as caught:
        store.summaries()
    message = str(caught.value)
    assert "http://127.0.0.1:9" in message and "check that the object store is running" in message
    assert "\n" not in message
    with pytest.raises(HarnessError, match="cannot upload"):
        store.save(night_folder(tmp_path, night(1)))
    assert time.monotonic() - began < 20


def test_missing_credentials_say_which_variables_to_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    # No config or credentials files, and no instance metadata service to ask.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    store = S3Results(f"s3://{BUCKET}/nightly", endpoint_url="http://127.0.0.1:9", connect_timeout=1,
                      max_attempts=1)
    with pytest.raises(HarnessError, match="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        store.summaries()
