"""The embedded cluster: a local Kubernetes control plane and process nodes, started and stopped as one.

On enter it starts the control plane, one node agent process per node, and
returns once every node is Ready; ``kubeconfig`` then reaches the cluster with
any Kubernetes client (kubectl too). On exit, also on Ctrl-C or SIGTERM, the
agents stop their pods and the control plane stops; the work folder goes unless
kept. After a SIGKILL of the harness, :func:`harness.undo.heal` removes what is
left from the undo records.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from kubernetes import client, config

from harness import lifecycle
from harness.cluster.embedded.control_plane import ControlPlane, ControlPlaneInfo
from harness.cluster.embedded.node_agent.env import write_image_overrides
from harness.cluster.kube.objects import name_of
from harness.errors import HarnessError, ServiceError
from harness.services._common import log_tail
from harness.undo import UndoLog, default_undo_log

__all__ = ["EmbeddedCluster", "NodeShape", "DEFAULT_NODES"]

_AGENT_STOP_GRACE_SECONDS = 20.0  # agents give pods up to 10 s, then need to report and exit


@dataclass(frozen=True, kw_only=True)
class NodeShape:
    pods: int = 4
    cpu: str = "2"
    memory: str = "8Gi"
    gpus: int = 0


DEFAULT_NODES: Mapping[str, NodeShape] = {"node-a": NodeShape(), "node-b": NodeShape()}


class EmbeddedCluster:
    """``workdir`` None makes a temp folder (recorded in ``undo``, removed on exit unless ``keep_workdir``)."""

    def __init__(
        self,
        *,
        nodes: Mapping[str, NodeShape] = DEFAULT_NODES,
        workdir: Path | None = None,
        undo: UndoLog | None = None,
        keep_workdir: bool = False,
        pod_cwd: Path | None = None,
        ready_timeout: float = 60.0,
    ) -> None:
        if not nodes:
            raise HarnessError("an embedded cluster needs at least one node")
        self._nodes = dict(nodes)
        self._given_workdir = workdir
        self.undo = undo if undo is not None else default_undo_log()
        self._keep = keep_workdir
        self._pod_cwd = Path(pod_cwd) if pod_cwd is not None else Path.cwd()
        self._ready_timeout = ready_timeout
        self._stack: contextlib.ExitStack | None = None
        self._workdir: Path | None = None
        self._control_plane: ControlPlane | None = None
        self._agents: dict[str, subprocess.Popen[bytes]] = {}
        self._kubeconfig: Path | None = None
        self.started_in_seconds = 0.0

    # --- lifecycle ---------------------------------------------------------------

    def __enter__(self) -> EmbeddedCluster:
        if self._stack is not None:
            raise HarnessError("this EmbeddedCluster is already running; create a new one")
        t0 = time.monotonic()
        stack = contextlib.ExitStack()
        try:
            self._workdir = self._make_workdir(stack)
            self._kubeconfig = self._workdir / "control-plane" / "kubeconfig"

            def start_agents(kubeconfig: Path) -> None:
                for name in self._nodes:
                    self.stop_agent(name)  # a restart on another API server port
                    self.start_agent(name, stack=stack)

            self._control_plane = stack.enter_context(
                ControlPlane(workdir=self._workdir / "control-plane", undo=self.undo, alongside=start_agents))
            self._wait_nodes_ready()
        except BaseException:
            stack.close()
            self._control_plane = None
            raise
        self._stack = stack
        self.started_in_seconds = time.monotonic() - t0
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop the agents (their pods with them), then the control plane, then remove the work folder."""
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()
        self._control_plane = None
        self._agents.clear()

    def _make_workdir(self, stack: contextlib.ExitStack) -> Path:
        if self._given_workdir is not None:
            self._given_workdir.mkdir(parents=True, exist_ok=True)
            return Path(self._given_workdir)
        # Name it, record it, then create it: a crash in between leaves no unrecorded folder.
        path = Path(tempfile.gettempdir()) / f"ml-chaos-{uuid.uuid4().hex[:10]}"
        record = self.undo.add_tempdir(path=path, description="embedded cluster workdir")
        (path / "control-plane").mkdir(mode=0o700, parents=True)
        if self._keep:
            self.undo.remove(record.id)  # the user wants it: heal must not delete it
        else:
            def remove() -> None:
                shutil.rmtree(path, ignore_errors=True)
                self.undo.remove(record.id)

            stack.callback(remove)
        return path

    # --- node agents -------------------------------------------------------------

    def start_agent(self, name: str, *, stack: contextlib.ExitStack | None = None) -> None:
        """Start the agent of node ``name`` (again, after :meth:`stop_agent`)."""
        shape = self._nodes.get(name)
        if shape is None:
            raise HarnessError(f"no node named {name!r} in this cluster; nodes: {sorted(self._nodes)}")
        if name in self._agents and self._agents[name].returncode is None:
            return
        agent_dir = self.workdir / "nodes" / name
        agent_dir.mkdir(parents=True, exist_ok=True)
        with open(agent_dir / "agent.log", "ab") as out:
            proc = lifecycle.spawn(
                [sys.executable, "-m", "harness.cluster.embedded.node_agent", f"--kubeconfig={self.kubeconfig}",
                 f"--node={name}", f"--pods={shape.pods}", f"--cpu={shape.cpu}", f"--memory={shape.memory}",
                 f"--gpus={shape.gpus}", f"--workdir={self.workdir}", f"--pod-cwd={self._pod_cwd}"],
                env=None, cwd=self._pod_cwd, stdout=out, stderr=subprocess.STDOUT, undo=self.undo,
                description=f"node agent of {name}",
            )
        self._agents[name] = proc
        target = stack if stack is not None else self._stack
        if target is not None:
            target.callback(self.stop_agent, name)

    def stop_agent(self, name: str) -> None:
        """Stop node ``name``'s agent: its pods end and its heartbeats stop (NotReady after the grace period)."""
        proc = self._agents.get(name)
        if proc is not None:
            lifecycle.stop(proc, grace=_AGENT_STOP_GRACE_SECONDS)

    def set_image_env(self, name: str, env: Mapping[str, str] | None) -> None:
        """Containers started on node ``name`` from now on see ``env`` over the image's env (None: the
        image's own again): what a node running another image digest would give them."""
        if name not in self._nodes:
            raise HarnessError(f"no node named {name!r} in this cluster; nodes: {sorted(self._nodes)}")
        write_image_overrides(self.workdir, name, env)

    def _wait_nodes_ready(self) -> None:
        api = client.CoreV1Api(config.new_client_from_config(config_file=str(self.kubeconfig)))
        deadline = time.monotonic() + self._ready_timeout
        while True:
            ready = {name_of(n) for n in api.list_node().items
                     if any(c.type == "Ready" and c.status == "True"
                            for c in ((n.status and n.status.conditions) or []))}
            if set(self._nodes) <= ready:
                return
            for name, proc in self._agents.items():
                if proc.poll() is not None:
                    raise ServiceError(f"the node agent of {name} exited with status {proc.returncode}; its log "
                                       f"ends: {log_tail(self.workdir / 'nodes' / name / 'agent.log')}")
            if time.monotonic() > deadline:
                raise ServiceError(f"nodes {sorted(set(self._nodes) - ready)} not Ready within "
                                   f"{self._ready_timeout:g} s; see {self.workdir / 'nodes'}")
            time.sleep(0.05)

    # --- accessors ---------------------------------------------------------------

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            raise HarnessError("the embedded cluster has not been started; use it as a context manager")
        return self._workdir

    @property
    def control_plane(self) -> ControlPlaneInfo:
        if self._control_plane is None:
            raise HarnessError("the embedded cluster is not running; use it as a context manager")
        return self._control_plane.info

    @property
    def kubeconfig(self) -> Path:
        if self._kubeconfig is None:
            raise HarnessError("the embedded cluster has not been started; use it as a context manager")
        return self._kubeconfig

    @property
    def node_names(self) -> list[str]:
        return sorted(self._nodes)

    @property
    def pod_logs_dir(self) -> Path:
        """Where the agents keep every container attempt's log: ``<ns>_<pod>_<uid>/<container>/<n>.log``."""
        return self.workdir / "pods"
