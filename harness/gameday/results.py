"""Where game-day nights are kept: a local folder or an S3 prefix, one sub-folder per night.

A stored night is the whole night folder (``summary.json``, ``schedule.json``, ``report.html``,
``junit.xml``, the run folders) under ``<root>/<night>/``. A folder without ``summary.json`` is not a
night (yet): a night in progress or a copy cut short is skipped by :meth:`ResultsStore.summaries`.

S3 credentials and region come from the environment as for any boto3 client; boto3 is imported
only when an S3 store is used.
"""

from __future__ import annotations

import mimetypes
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from harness.errors import HarnessError, ServiceError
from harness.gameday.model import NightSummary
from harness.gameday.summary_file import parse_summary, read_summary

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["DEFAULT_RESULTS", "LocalResults", "ResultsStore", "S3Results", "open_results"]

DEFAULT_RESULTS = "reports/gamedays"
SUMMARY = "summary.json"


class ResultsStore(Protocol):
    """Where nights are kept."""

    def save(self, night_dir: Path) -> str:
        """Copy the finished night folder ``night_dir`` in as ``<night_dir.name>``; return where it went.
        Saving a night again overwrites its files. HarnessError when ``night_dir`` has no summary.json
        or the store cannot be written."""
        ...

    def summaries(self) -> list[NightSummary]:
        """The summary of every stored night, oldest first by ``started_at`` (then by night name).
        HarnessError when the store cannot be read or a stored summary is malformed."""
        ...


def open_results(spec: str, *, endpoint_url: str | None = None) -> ResultsStore:
    """``S3Results(spec)`` for an ``s3://bucket/prefix`` spec, else ``LocalResults(Path(spec))``.
    ``endpoint_url`` (an S3-compatible endpoint such as MinIO) only applies to S3 and is ignored otherwise."""
    if spec.startswith("s3://"):
        return S3Results(spec, endpoint_url=endpoint_url)
    return LocalResults(Path(spec))


def _oldest_first(summaries: list[NightSummary]) -> list[NightSummary]:
    return sorted(summaries, key=lambda s: (s.started_at, s.night))


def _finished_files(night_dir: Path) -> list[Path]:
    """Every file of a finished night folder, ``summary.json`` last; HarnessError when not finished."""
    if not (night_dir / SUMMARY).is_file():
        raise HarnessError(f"{night_dir} is not a finished game-day night (it has no {SUMMARY}); "
                           "save a night folder that `mlchaos gameday` completed")
    summary = night_dir / SUMMARY
    return [*sorted(p for p in night_dir.rglob("*") if p.is_file() and p != summary), summary]


# --- a local folder --------------------------------------------------------------------


class LocalResults:
    """Nights as folders under ``root`` (created on the first save)."""

    def __init__(self, root: Path = Path(DEFAULT_RESULTS)) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalResults({str(self.root)!r})"

    def save(self, night_dir: Path) -> str:
        """A night already under ``root`` stays where it is (the runner may write there directly);
        any other is copied to ``root/<night_dir.name>``."""
        files = _finished_files(night_dir)
        if night_dir.resolve().is_relative_to(self.root.resolve()):
            return str(night_dir)
        target = self.root / night_dir.name
        try:
            for src in files:  # summary.json last: the night counts only once it is whole
                dst = target / src.relative_to(night_dir)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
        except OSError as exc:
            raise HarnessError(f"cannot copy {night_dir} to {target}: {exc}; "
                               "check the results folder is writable") from None
        return str(target)

    def summaries(self) -> list[NightSummary]:
        if not self.root.is_dir():
            return []
        found = [read_summary(d / SUMMARY) for d in self.root.iterdir() if (d / SUMMARY).is_file()]
        return _oldest_first(found)


# --- an S3 prefix ----------------------------------------------------------------------


class S3Results:
    """Nights under ``s3://bucket/prefix/<night>/``; the bucket must exist.

    ``connect_timeout`` and ``max_attempts`` bound how long an unreachable endpoint is tried before
    the HarnessError (botocore's own defaults retry for a long while)."""

    def __init__(self, url: str, *, endpoint_url: str | None = None, connect_timeout: float = 5.0,
                 max_attempts: int = 3) -> None:
        self.bucket, self.prefix = _parse_url(url)
        self.endpoint_url = endpoint_url
        self._connect_timeout = connect_timeout
        self._max_attempts = max_attempts
        self._client: S3Client | None = None

    def __repr__(self) -> str:
        return f"S3Results({self.url!r})"

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def save(self, night_dir: Path) -> str:
        """Upload every file of ``night_dir`` under ``<prefix>/<night_dir.name>/``, ``summary.json``
        last, so that a reader listing nights never sees one half uploaded."""
        from botocore.exceptions import BotoCoreError, ClientError

        files = _finished_files(night_dir)
        base = self._key(night_dir.name)
        client = self._s3()
        try:
            for src in files:
                key = f"{base}/{src.relative_to(night_dir).as_posix()}"
                content_type = mimetypes.guess_type(src.name)[0] or "application/octet-stream"
                with src.open("rb") as body:
                    client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
        except (BotoCoreError, ClientError) as exc:
            raise self._error(f"upload {night_dir} to", exc) from None
        return f"s3://{self.bucket}/{base}/"

    def summaries(self) -> list[NightSummary]:
        """Reads ``<prefix>/<night>/summary.json`` of every night folder under the prefix."""
        from botocore.exceptions import BotoCoreError, ClientError

        client = self._s3()
        found: list[NightSummary] = []
        try:
            for folder in self._night_folders():
                key = f"{folder}{SUMMARY}"
                try:
                    body = client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                except ClientError as exc:
                    if _code(exc) in ("NoSuchKey", "404"):
                        continue  # a night still uploading, or not a night
                    raise
                found.append(parse_summary(body.decode("utf-8", errors="replace"),
                                           source=f"s3://{self.bucket}/{key}"))
        except (BotoCoreError, ClientError) as exc:
            raise self._error("read nights from", exc) from None
        return _oldest_first(found)

    def _night_folders(self) -> list[str]:
        """The keys' common prefixes one level below the prefix (``<prefix>/<night>/``)."""
        pages = self._s3().get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(""), Delimiter="/")
        return [cp["Prefix"] for page in pages for cp in page.get("CommonPrefixes", []) if "Prefix" in cp]

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def _s3(self) -> S3Client:
        if self._client is None:
            import boto3
            from botocore.config import Config

            # A session of its own: boto3's default session keeps the credentials it first found.
            self._client = boto3.session.Session().client(
                "s3", endpoint_url=self.endpoint_url,
                config=Config(connect_timeout=self._connect_timeout, read_timeout=60,
                              retries={"max_attempts": self._max_attempts, "mode": "standard"}),
            )
        return self._client

    def _error(self, what: str, exc: Exception) -> ServiceError:
        """A one-line ServiceError (a HarnessError) saying what failed and how to fix it."""
        from botocore.exceptions import ClientError, NoCredentialsError

        where = f"{self.url} at {self.endpoint_url or 'AWS'}"
        detail = " ".join(str(exc).split())
        if isinstance(exc, NoCredentialsError):
            fix = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or an AWS profile)"
        elif isinstance(exc, ClientError) and _code(exc) in ("NoSuchBucket", "404"):
            fix = f"create the bucket (aws s3 mb s3://{self.bucket}) or correct the results URL"
        elif isinstance(exc, ClientError) and _code(exc) in ("AccessDenied", "403", "InvalidAccessKeyId",
                                                             "SignatureDoesNotMatch"):
            fix = "check the AWS_* credentials and their permissions on the bucket"
        elif isinstance(exc, ClientError):
            fix = "check the bucket name, the credentials and the endpoint URL"
        else:
            fix = "check that the object store is running and the endpoint URL is right"
        return ServiceError(f"cannot {what} {where}: {detail}; {fix}")


def _code(exc: Exception) -> str:
    from botocore.exceptions import ClientError

    return str(exc.response.get("Error", {}).get("Code", "")) if isinstance(exc, ClientError) else ""


def _parse_url(url: str) -> tuple[str, str]:
    """``(bucket, prefix)`` of ``s3://bucket/prefix`` (prefix without its outer slashes, maybe empty)."""
    if not url.startswith("s3://"):
        raise HarnessError(f"{url!r} is not an S3 URL; write s3://bucket/prefix")
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if not bucket:
        raise HarnessError(f"{url!r} names no bucket; write s3://bucket/prefix")
    return bucket, prefix.strip("/")
