"""The Kubernetes control plane on loopback ports: etcd, kube-apiserver, kube-controller-manager, kube-scheduler.

Everything lives in one work folder (certificates, keys, the token file, etcd's
data, one log per component) and every process goes through
:func:`harness.lifecycle.spawn`, so it has an undo record from the moment it
exists. :class:`ControlPlane` is a context manager: on enter it returns once
the API server answers ``/readyz``; on exit it stops the components in reverse
order. The kubeconfig it writes authenticates with a static token of the
``system:masters`` group and verifies the API server's own certificate.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import yaml

from harness import lifecycle
from harness.cluster.embedded.binaries import ControlPlaneBinaries, find_binaries
from harness.cluster.embedded.pki import make_service_account_keys, make_serving_cert
from harness.errors import ServiceError
from harness.services._common import start_on_free_port
from harness.undo import UndoLog

__all__ = ["ControlPlane", "ControlPlaneInfo", "CONTEXT_NAME"]

CONTEXT_NAME = "mlchaos-embedded"
_STOP_GRACE_SECONDS = 5.0
# How soon a node that stopped reporting is NotReady (Kubernetes' default is 40 s).
NODE_MONITOR_GRACE_SECONDS = 16


@dataclass(frozen=True, kw_only=True)
class ControlPlaneInfo:
    """What a client needs: the API server's URL, its CA, the token and the kubeconfig file."""

    server: str
    ca_file: Path
    token: str
    kubeconfig: Path
    version: str
    started_in_seconds: float


class ControlPlane:
    """Runs the four components under ``workdir`` (created by the caller)."""

    def __init__(self, *, workdir: Path, undo: UndoLog, binaries: ControlPlaneBinaries | None = None,
                 startup_timeout: float = 60.0, alongside: Callable[[Path], None] | None = None) -> None:
        """``alongside`` is called with the kubeconfig as soon as the API server process exists, before it is
        ready, to start what may connect while it comes up (node agents); a second call means the API server
        moved to another port (its first one was taken) and the kubeconfig was rewritten."""
        self.workdir = Path(workdir)
        self._undo = undo
        self._binaries = binaries
        self._timeout = startup_timeout
        self._alongside = alongside
        self._stack = contextlib.ExitStack()
        self._info: ControlPlaneInfo | None = None

    @property
    def info(self) -> ControlPlaneInfo:
        if self._info is None:
            raise ServiceError("the control plane is not running; use ControlPlane as a context manager")
        return self._info

    def __enter__(self) -> ControlPlane:
        t0 = time.monotonic()
        binaries = self._binaries or find_binaries()
        try:
            self._start(binaries, t0)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop every component, newest first. Idempotent."""
        self._info = None
        self._stack.close()

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        with open(self.workdir / f"{name}.log", "ab") as out:
            proc = lifecycle.spawn(argv, env=None, cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT,
                                   undo=self._undo, description=f"{name} of the embedded cluster")
        self._stack.callback(lifecycle.stop, proc, grace=_STOP_GRACE_SECONDS)
        return proc

    def _start(self, binaries: ControlPlaneBinaries, t0: float) -> None:
        pki = self.workdir / "pki"
        serving = make_serving_cert(pki, name="kube-apiserver")
        sa_key, sa_pub = make_service_account_keys(pki)
        token = secrets.token_hex(16)
        tokens = pki / "tokens.csv"
        tokens.write_text(f'{token},mlchaos-admin,mlchaos-admin,"system:masters"\n')
        tokens.chmod(0o600)

        etcd_dir = self.workdir / "etcd"
        etcd, etcd_port = start_on_free_port(
            what="etcd",
            argv=lambda port: [
                str(binaries.etcd), "--name=default", f"--data-dir={etcd_dir}",
                f"--listen-client-urls=http://127.0.0.1:{port}", f"--advertise-client-urls=http://127.0.0.1:{port}",
                *_peer_flags(lifecycle.free_port()),
            ],
            ready_url=lambda port: f"http://127.0.0.1:{port}/health",
            logfile=self.workdir / "etcd.log", cwd=self.workdir, env=None, undo=self._undo, timeout=self._timeout,
        )
        self._stack.callback(lifecycle.stop, etcd, grace=_STOP_GRACE_SECONDS)

        tls = ssl.create_default_context(cafile=str(serving.cert))
        kubeconfig = self.workdir / "kubeconfig"

        def alongside(port: int) -> None:
            # What can connect while the API server comes up starts now, so its own start-up overlaps.
            write_kubeconfig(kubeconfig, server=f"https://127.0.0.1:{port}", ca_file=serving.cert, token=token,
                             context=CONTEXT_NAME)
            if self._alongside is not None:
                self._alongside(kubeconfig)

        apiserver, api_port = start_on_free_port(
            what="kube-apiserver",
            argv=lambda port: [
                str(binaries.kube_apiserver),
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                f"--secure-port={port}", "--insecure-port=0", "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--tls-cert-file={serving.cert}", f"--tls-private-key-file={serving.key}",
                f"--cert-dir={pki}", f"--token-auth-file={tokens}", "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={sa_pub}", f"--service-account-signing-key-file={sa_key}",
                "--service-cluster-ip-range=10.96.0.0/24",
                "--enable-admission-plugins=Priority,ResourceQuota,NamespaceLifecycle",
                "--disable-admission-plugins=ServiceAccount",
                "--endpoint-reconciler-type=none",
                "--kubelet-preferred-address-types=InternalIP",
                "--profiling=false",
            ],
            ready_url=lambda port: f"https://127.0.0.1:{port}/readyz",
            logfile=self.workdir / "kube-apiserver.log", cwd=self.workdir, env=None, undo=self._undo,
            timeout=self._timeout, tls=tls, started=alongside,
        )
        self._stack.callback(lifecycle.stop, apiserver, grace=_STOP_GRACE_SECONDS)
        server = f"https://127.0.0.1:{api_port}"

        self._spawn("kube-controller-manager", [
            str(binaries.kube_controller_manager), f"--kubeconfig={kubeconfig}", "--leader-elect=false",
            "--secure-port=0", "--port=0", f"--service-account-private-key-file={sa_key}",
            "--controllers=*,-serviceaccount-token", "--use-service-account-credentials=false",
            "--node-monitor-period=1s", f"--node-monitor-grace-period={NODE_MONITOR_GRACE_SECONDS}s",
            "--concurrent-gc-syncs=5", "--profiling=false",
        ])
        self._spawn("kube-scheduler", [
            str(binaries.kube_scheduler), f"--kubeconfig={kubeconfig}", "--leader-elect=false",
            "--secure-port=0", "--port=0", "--profiling=false",
        ])
        self._info = ControlPlaneInfo(server=server, ca_file=serving.cert, token=token, kubeconfig=kubeconfig,
                                      version=binaries.version, started_in_seconds=time.monotonic() - t0)


def _peer_flags(port: int) -> list[str]:
    url = f"http://127.0.0.1:{port}"
    return [f"--listen-peer-urls={url}", f"--initial-advertise-peer-urls={url}", f"--initial-cluster=default={url}"]


def write_kubeconfig(path: Path, *, server: str, ca_file: Path, token: str, context: str) -> None:
    """A kubeconfig with one cluster, user and context (made current), readable only by its owner."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {
            "server": server,
            "certificate-authority-data": base64.b64encode(ca_file.read_bytes()).decode(),
        }}],
        "users": [{"name": context, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
        "current-context": context,
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)
