"""A Prometheus server of our own: 1 s scrapes of pod endpoints found through file SD."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from harness import lifecycle
from harness.errors import ServiceError
from harness.services._common import start_on_free_port
from harness.undo import UndoLog

__all__ = ["PrometheusServer", "ScrapeTarget", "SCRAPE_JOB"]

SCRAPE_JOB = "pods"
"""The scrape job that reads ``targets/*.json``. A target's own ``job`` label overrides it."""

_INSTALL_HINT = "install it with: apt-get install -y --no-install-recommends prometheus"


@dataclass(frozen=True, kw_only=True)
class ScrapeTarget:
    """One endpoint to scrape (``host:port``) and the labels to attach to its series."""

    address: str
    labels: Mapping[str, str] = field(default_factory=dict)


class PrometheusServer:
    """Runs ``binary`` on a free 127.0.0.1 port with its own TSDB under ``workdir``.

    Files: ``workdir/prometheus.yml`` (config), ``workdir/targets/pods.json``
    (file SD, rewritten atomically by :meth:`set_targets`), ``workdir/prometheus.log``
    and a ``tsdb-*`` temp dir removed on stop. Use as a context manager; on enter
    it returns once ``/-/ready`` answers (ServiceError otherwise, with its log tail).
    """

    def __init__(
        self,
        *,
        workdir: Path,
        undo: UndoLog,
        binary: str = "prometheus",
        startup_timeout: float = 30.0,
    ) -> None:
        self.workdir = Path(workdir)
        self._undo = undo
        self._binary = binary
        self._startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._port = 0
        self._tsdb: Path | None = None
        self._tsdb_record = ""
        self._targets_lock = threading.Lock()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:9090``. Only valid while running."""
        if self._proc is None:
            raise ServiceError("Prometheus is not running; use PrometheusServer as a context manager")
        return f"http://127.0.0.1:{self._port}"

    @property
    def pid(self) -> int:
        return self._proc.pid if self._proc is not None else 0

    @property
    def targets_dir(self) -> Path:
        return self.workdir / "targets"

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Write the config, start the server, wait until it is ready."""
        binary = shutil.which(self._binary)
        if binary is None:
            raise ServiceError(f"Prometheus binary {self._binary!r} not found on PATH; {_INSTALL_HINT}")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.targets_dir.mkdir(exist_ok=True)
        if not (self.targets_dir / "pods.json").exists():
            self.set_targets([])
        config = self.workdir / "prometheus.yml"
        config.write_text(_config(self.targets_dir))
        # The TSDB name is chosen, recorded, then created: a crash leaves nothing unrecorded.
        tsdb = Path(tempfile.mktemp(prefix="tsdb-", dir=self.workdir))
        self._tsdb_record = self._undo.add_tempdir(path=tsdb, description="Prometheus TSDB").id
        tsdb.mkdir()
        self._tsdb = tsdb
        try:
            self._proc, self._port = start_on_free_port(
                what="Prometheus",
                argv=lambda port: [
                    binary,
                    f"--config.file={config}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    f"--storage.tsdb.path={tsdb}",
                    "--storage.tsdb.retention.time=1d",
                ],
                ready_url=lambda port: f"http://127.0.0.1:{port}/-/ready",
                logfile=self.workdir / "prometheus.log",
                cwd=self.workdir,
                env=None,
                undo=self._undo,
                timeout=self._startup_timeout,
            )
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server and remove its TSDB. Idempotent."""
        if self._proc is not None:
            lifecycle.stop(self._proc, grace=5.0)
            self._proc = None
        if self._tsdb is not None:
            shutil.rmtree(self._tsdb, ignore_errors=True)
            self._tsdb = None
        if self._tsdb_record:
            self._undo.remove(self._tsdb_record)
            self._tsdb_record = ""

    def set_targets(self, targets: Sequence[ScrapeTarget]) -> None:
        """Replace the scrape targets (file SD, written atomically; Prometheus
        notices the change through inotify, or at the latest on its 1 s refresh)."""
        groups = [{"targets": [t.address], "labels": dict(t.labels)} for t in targets]
        with self._targets_lock:
            self.targets_dir.mkdir(parents=True, exist_ok=True)
            tmp = self.targets_dir / ".pods.json.tmp"
            tmp.write_text(json.dumps(groups, sort_keys=True))
            os.replace(tmp, self.targets_dir / "pods.json")


def _config(targets_dir: Path) -> str:
    # JSON is valid YAML, and json.dumps quotes paths safely.
    return json.dumps(
        {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [
                {
                    "job_name": SCRAPE_JOB,
                    "file_sd_configs": [{"files": [str(targets_dir / "*.json")], "refresh_interval": "1s"}],
                }
            ],
        },
        indent=2,
    )

