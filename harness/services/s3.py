"""The S3 store: moto's server on a loopback port, or an external S3/MinIO endpoint.

Set ``HARNESS_S3_ENDPOINT`` (e.g. ``http://127.0.0.1:9000``) to use an existing
endpoint instead of starting moto; :func:`s3_service` picks one or the other.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from harness import lifecycle
from harness.errors import ServiceError
from harness.services._common import start_on_free_port
from harness.undo import UndoLog

__all__ = ["MotoS3Server", "ExternalS3", "S3_ENDPOINT_ENV", "check_s3_reachable", "s3_service"]

S3_ENDPOINT_ENV = "HARNESS_S3_ENDPOINT"


def check_s3_reachable(endpoint_url: str, *, timeout: float = 5.0) -> None:
    """Raise ServiceError unless ``endpoint_url`` answers HTTP (any status: an
    S3 endpoint may well say 403 to an anonymous request)."""
    try:
        with urllib.request.urlopen(endpoint_url, timeout=timeout):
            return
    except urllib.error.HTTPError:
        return
    except urllib.error.URLError as exc:
        reason: object = exc.reason
    except (OSError, ValueError) as exc:
        reason = exc
    raise ServiceError(
        f"S3 endpoint {endpoint_url} is unreachable: {reason}; "
        f"start it or set {S3_ENDPOINT_ENV} to a reachable S3/MinIO"
    )


class MotoS3Server:
    """moto's S3 server (``python -m moto.server``) on a free 127.0.0.1 port.

    Its log is ``workdir/moto.log``. Use as a context manager; on enter it
    returns once the server answers HTTP (ServiceError otherwise).
    """

    def __init__(self, *, workdir: Path, undo: UndoLog, startup_timeout: float = 60.0) -> None:
        self.workdir = Path(workdir)
        self._undo = undo
        self._startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._port = 0

    @property
    def endpoint_url(self) -> str:
        if self._proc is None:
            raise ServiceError("the moto S3 server is not running; use MotoS3Server as a context manager")
        return f"http://127.0.0.1:{self._port}"

    @property
    def pid(self) -> int:
        return self._proc.pid if self._proc is not None else 0

    def __enter__(self) -> MotoS3Server:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        try:
            import moto  # noqa: F401  (only to give a clear error before spawning)
        except ImportError:
            raise ServiceError(
                f"moto is not installed in {sys.executable}; pip install 'moto[server]' or set {S3_ENDPOINT_ENV}"
            ) from None
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._proc, self._port = start_on_free_port(
                what="the moto S3 server",
                argv=lambda port: [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                ready_url=lambda port: f"http://127.0.0.1:{port}/moto-api/",
                logfile=self.workdir / "moto.log",
                cwd=self.workdir,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                undo=self._undo,
                timeout=self._startup_timeout,
                any_status=True,
            )
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server (its data is in memory and goes with it). Idempotent."""
        if self._proc is not None:
            lifecycle.stop(self._proc, grace=5.0)
            self._proc = None


class ExternalS3:
    """An S3 endpoint someone else runs; entering checks that it is reachable."""

    def __init__(self, endpoint_url: str, *, timeout: float = 5.0) -> None:
        self.endpoint_url = endpoint_url.rstrip("/")
        self._timeout = timeout

    pid = 0

    def __enter__(self) -> ExternalS3:
        check_s3_reachable(self.endpoint_url, timeout=self._timeout)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


def s3_service(*, workdir: Path, undo: UndoLog) -> MotoS3Server | ExternalS3:
    """``ExternalS3($HARNESS_S3_ENDPOINT)`` when that is set, else a moto server."""
    external = os.environ.get(S3_ENDPOINT_ENV, "").strip()
    if external:
        return ExternalS3(external)
    return MotoS3Server(workdir=workdir, undo=undo)
