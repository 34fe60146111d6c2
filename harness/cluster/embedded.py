"""The embedded cluster: S3 (moto or external), Prometheus and the process cluster, on loopback.

Started and stopped as one context manager; nothing it started outlives the
``with`` block, also on Ctrl-C or SIGTERM (with
:func:`harness.lifecycle.install_signal_handlers`). After a SIGKILL of the
harness, :func:`harness.undo.heal` removes what is left, from the undo records.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from harness.cluster.base import EventSink, JobSpec, JobStatus, NodeInfo, PodInfo
from harness.cluster.process import ProcessCluster
from harness.errors import HarnessError
from harness.services.prometheus import PrometheusServer, ScrapeTarget
from harness.services.s3 import ExternalS3, MotoS3Server, s3_service
from harness.undo import UndoLog, default_undo_log

__all__ = ["EmbeddedCluster", "DEFAULT_NODES"]

DEFAULT_NODES: Mapping[str, int] = {"node-a": 2, "node-b": 2}


class EmbeddedCluster:
    """Implements :class:`harness.cluster.base.Cluster` plus ``drain``.

    ``workdir`` None makes a temp dir (recorded in ``undo``; removed on exit unless
    ``keep_workdir``); a given ``workdir`` is never removed. ``undo`` None uses the
    default undo log (``$HARNESS_STATE_DIR/undo``). ``pod_cwd`` is where pods run
    (default: the current directory).
    """

    def __init__(
        self,
        *,
        nodes: Mapping[str, int] = DEFAULT_NODES,
        workdir: Path | None = None,
        undo: UndoLog | None = None,
        max_running_pods: int | None = None,
        scoped_quotas: Mapping[str, int] | None = None,
        keep_workdir: bool = False,
        prometheus_binary: str = "prometheus",
        pod_cwd: Path | None = None,
    ) -> None:
        self._node_slots = dict(nodes)
        self._given_workdir = Path(workdir) if workdir is not None else None
        self.undo = undo if undo is not None else default_undo_log()
        self._max_running_pods = max_running_pods
        self._scoped_quotas = dict(scoped_quotas or {})
        self._keep_workdir = keep_workdir
        self._prometheus_binary = prometheus_binary
        self._pod_cwd = pod_cwd
        self._stack: contextlib.ExitStack | None = None
        self._workdir: Path | None = None
        self._s3: MotoS3Server | ExternalS3 | None = None
        self._prometheus: PrometheusServer | None = None
        self._cluster: ProcessCluster | None = None

    # --- lifecycle -------------------------------------------------------------

    def __enter__(self) -> EmbeddedCluster:
        if self._stack is not None:
            raise HarnessError("this EmbeddedCluster is already running; create a new one")
        stack = contextlib.ExitStack()
        try:
            self._workdir = self._make_workdir(stack)
            self._s3 = stack.enter_context(s3_service(workdir=self._workdir / "s3", undo=self.undo))
            self._prometheus = stack.enter_context(
                PrometheusServer(workdir=self._workdir / "prometheus", undo=self.undo, binary=self._prometheus_binary)
            )
            self._cluster = stack.enter_context(
                ProcessCluster(
                    nodes=self._node_slots,
                    workdir=self._workdir,
                    undo=self.undo,
                    max_running_pods=self._max_running_pods,
                    scoped_quotas=self._scoped_quotas,
                    on_pods_changed=self._update_targets,
                    pod_cwd=self._pod_cwd,
                )
            )
        except BaseException:
            stack.close()  # stops what did start, in reverse order
            self._reset()
            raise
        self._stack = stack
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the cluster, Prometheus, S3, then remove the temp workdir. Every
        stop runs even if an earlier one fails (the first failure is raised). Idempotent."""
        stack, self._stack = self._stack, None
        try:
            if stack is not None:
                stack.close()
        finally:
            self._reset()

    def _reset(self) -> None:
        self._cluster = None
        self._prometheus = None
        self._s3 = None

    def _make_workdir(self, stack: contextlib.ExitStack) -> Path:
        if self._given_workdir is not None:
            self._given_workdir.mkdir(parents=True, exist_ok=True)
            return self._given_workdir
        # Name it, record it, then create it: a crash in between leaves no unrecorded dir.
        path = Path(tempfile.gettempdir()) / f"ml-chaos-{uuid.uuid4().hex[:10]}"
        record = self.undo.add_tempdir(path=path, description="embedded cluster workdir")
        path.mkdir(mode=0o700)
        if self._keep_workdir:
            self.undo.remove(record.id)  # the user wants it: heal must not delete it
        else:

            def remove() -> None:
                shutil.rmtree(path, ignore_errors=True)
                self.undo.remove(record.id)

            stack.callback(remove)
        return path

    def _update_targets(self, pods: list[PodInfo]) -> None:
        prometheus = self._prometheus
        if prometheus is None:
            return
        prometheus.set_targets(
            [
                ScrapeTarget(address=p.metrics_endpoint, labels={"pod": p.name, "job": p.job, "node": p.node})
                for p in pods
                if p.metrics_endpoint and p.phase == "Running"
            ]
        )

    # --- accessors -------------------------------------------------------------

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            raise HarnessError("the embedded cluster has not been started; use it as a context manager")
        return self._workdir

    @property
    def process_cluster(self) -> ProcessCluster:
        if self._cluster is None:
            raise HarnessError("the embedded cluster is not running; use it as a context manager")
        return self._cluster

    @property
    def prometheus(self) -> PrometheusServer:
        if self._prometheus is None:
            raise HarnessError("the embedded cluster is not running; use it as a context manager")
        return self._prometheus

    def endpoint(self, service: str) -> str:
        """``"s3"`` → the S3 endpoint URL, ``"prometheus"`` → Prometheus' base URL."""
        if service == "s3":
            if self._s3 is None:
                raise HarnessError("the embedded cluster is not running; use it as a context manager")
            return self._s3.endpoint_url
        if service == "prometheus":
            return self.prometheus.url
        raise HarnessError(f"unknown service {service!r}; the embedded cluster serves 's3' and 'prometheus'")

    # --- Cluster protocol, by delegation --------------------------------------

    def nodes(self) -> list[NodeInfo]:
        return self.process_cluster.nodes()

    def submit_job(self, spec: JobSpec, *, sink: EventSink) -> None:
        self.process_cluster.submit_job(spec, sink=sink)

    def job_status(self, name: str) -> JobStatus:
        return self.process_cluster.job_status(name)

    def wait_job(self, name: str, *, timeout: float) -> JobStatus:
        return self.process_cluster.wait_job(name, timeout=timeout)

    def list_pods(self, *, labels: Mapping[str, str] | None = None) -> list[PodInfo]:
        return self.process_cluster.list_pods(labels=labels)

    def delete_pod(self, name: str, *, grace_period_seconds: float | None = None) -> PodInfo:
        return self.process_cluster.delete_pod(name, grace_period_seconds=grace_period_seconds)

    def cordon(self, node: str) -> None:
        self.process_cluster.cordon(node)

    def uncordon(self, node: str) -> None:
        self.process_cluster.uncordon(node)

    def drain(self, node: str, *, grace_period_seconds: float | None = None) -> list[PodInfo]:
        return self.process_cluster.drain(node, grace_period_seconds=grace_period_seconds)

    def delete_job(self, name: str) -> None:
        self.process_cluster.delete_job(name)
