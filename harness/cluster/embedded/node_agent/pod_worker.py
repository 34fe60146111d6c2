"""One pod on a process node, from binding to removal, as a kubelet runs it.

The worker starts the pod's container, restarts it in place under
``restartPolicy: OnFailure``/``Always`` with the kubelet's crash-loop backoff
(at once the first time, then 10 s doubling up to 5 min), reports pod status
(phase, container state with exit code and reason, times, restart count, pod IP)
and honours deletion: SIGTERM, the pod's ``deletionGracePeriodSeconds``,
SIGKILL, final status, then removes the pod object.
"""

from __future__ import annotations

import datetime
import logging
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.cluster.embedded.node_agent.container import ContainerProcess
from harness.cluster.embedded.node_agent.cpu_limits import CpuLimits
from harness.cluster.embedded.node_agent.env import container_env, image_overrides
from harness.cluster.embedded.node_agent.pod_cgroups import PodCgroups
from harness.cluster.embedded.node_agent.quantity import cpu_cores, memory_bytes
from harness.cluster.embedded.node_agent.resource_faults import ResourceFaults
from harness.cluster.fault_control import FAULT_STATUS_ANNOTATION
from harness.errors import HarnessError
from harness.undo import UndoLog

__all__ = ["PodWorker", "FINALIZER", "PORT_ANNOTATION_PREFIX", "crash_loop_delay"]

log = logging.getLogger(__name__)

FINALIZER = "mlchaos.io/process-node"
"""Holds a force-deleted pod until its container's end has been reported, so every exit code is seen."""

PORT_ANNOTATION_PREFIX = "ports.mlchaos.io/"
"""``ports.mlchaos.io/<port name>``: the host port a process node gave that container port."""

PodDict = dict[str, Any]
StatusPatch = Callable[[str, str, Any], None]
Remove = Callable[[str, str, str], None]


def crash_loop_delay(restarts: int) -> float:
    """The kubelet's restart backoff before restart number ``restarts`` (1-based): 0, 10, 20, ... 300 s."""
    if restarts <= 1:
        return 0.0
    return float(min(10 * 2 ** (restarts - 2), 300))


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class PodWorker:
    """Runs one pod; ``update`` feeds it the latest pod object from the watch."""

    def __init__(
        self,
        *,
        pod: PodDict,
        node: str,
        workdir: Path,
        pod_cwd: Path,
        undo: UndoLog,
        cpu_limits: CpuLimits,
        patch_status: StatusPatch,
        patch_metadata: StatusPatch,
        remove: Remove,
        allocate_port: Callable[[], int],
        pod_cgroups: PodCgroups | None = None,
    ) -> None:
        meta = pod["metadata"]
        self.namespace: str = meta["namespace"]
        self.name: str = meta["name"]
        self.uid: str = meta["uid"]
        self._node = node
        self._pod = pod
        self._gone = False  # the object was removed from the API
        self._cond = threading.Condition()
        self._workdir = workdir
        self._pod_cwd = pod_cwd
        self._undo = undo
        self._cpu_limits = cpu_limits
        self._pod_cgroups = pod_cgroups
        self._faults = ResourceFaults(undo=undo, description=f"pod {meta['namespace']}/{meta['name']} on {node}")
        self._patch_status = patch_status
        self._patch_metadata = patch_metadata
        self._remove = remove
        self._allocate_port = allocate_port
        self._container: ContainerProcess | None = None
        self._attempt_logs: list[Path] = []
        self._restarts = 0
        self._started_at = time.time()
        self._shutdown_grace: float | None = None
        self._last_terminated: PodDict | None = None  # the previous attempt's end, once restarted in place
        self.finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"pod-{self.name}", daemon=True)

    # --- inputs ----------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def update(self, pod: PodDict) -> None:
        with self._cond:
            self._pod = pod
            container = self._container
            self._cond.notify_all()
        self._apply_faults(pod, container)

    def _apply_faults(self, pod: PodDict, container: ContainerProcess | None) -> None:
        """Act on the fault-control annotations (harness.cluster.fault_control) and answer in the pod's status
        annotation, so the fault knows whether it acted."""
        status = self._faults.apply(pod["metadata"].get("annotations") or {}, container)
        if status:
            try:
                self._patch_metadata(self.namespace, self.name,
                                     {"metadata": {"annotations": {FAULT_STATUS_ANNOTATION: status}}})
            except Exception as exc:  # the pod may be going; the fault then times out waiting for the answer
                log.debug("pod %s/%s: fault status not reported: %s", self.namespace, self.name, exc)

    def gone(self) -> None:
        """The pod object was removed (a forced delete that skipped our finalizer, or a lost agent)."""
        with self._cond:
            self._gone = True
            self._cond.notify_all()

    def shutdown(self, *, grace_cap: float) -> None:
        """The agent is stopping: end the container (its grace period, at most ``grace_cap``)."""
        with self._cond:
            self._shutdown_grace = grace_cap
            self._cond.notify_all()

    # --- logs ------------------------------------------------------------------

    def log_file(self, *, previous: bool) -> tuple[Path | None, Callable[[], bool]]:
        """The current (or previous) attempt's log and a function telling whether that attempt has ended."""
        with self._cond:
            index = len(self._attempt_logs) - (2 if previous else 1)
            if index < 0:
                return None, lambda: True
            path = self._attempt_logs[index]
            container = self._container
            current = index == len(self._attempt_logs) - 1
        if not current or container is None:
            return path, lambda: True
        return path, lambda: not container.running

    # --- the pod's life --------------------------------------------------------

    def _spec_container(self) -> Mapping[str, Any]:
        containers = (self._pod.get("spec") or {}).get("containers") or []
        if len(containers) != 1 or (self._pod["spec"].get("initContainers")):
            raise HarnessError("process nodes run pods with exactly one container and no init containers")
        container: Mapping[str, Any] = containers[0]
        return container

    def _deleting(self) -> bool:
        return bool(self._pod["metadata"].get("deletionTimestamp")) or self._gone or self._shutdown_grace is not None

    def _grace(self) -> float:
        if self._shutdown_grace is not None:
            own = float(self._pod["spec"].get("terminationGracePeriodSeconds") or 30)
            return min(own, self._shutdown_grace)
        value = self._pod["metadata"].get("deletionGracePeriodSeconds")
        if value is None:
            value = self._pod["spec"].get("terminationGracePeriodSeconds", 30)
        return 0.0 if self._gone else float(value)

    def _run(self) -> None:
        try:
            self._live()
        except Exception:
            # Also the race of a deletion with our first patch: a finalizer cannot be added to a pod being
            # deleted. Whatever failed, the pod object must still go once deleted, or it stays forever.
            log.exception("pod %s/%s: worker failed; its pod is removed once deleted", self.namespace, self.name)
            try:
                self._wait_for_deletion()
            except Exception:
                log.exception("pod %s/%s: not removed", self.namespace, self.name)
        finally:
            # The pod's scratch folder lives as long as the pod, as an emptyDir does.
            shutil.rmtree(self._scratch_dir(), ignore_errors=True)
            self.finished.set()

    def _scratch_dir(self) -> Path:
        """The pod's own local disk (``TMPDIR``): kept across in-place container restarts,
        removed with the pod, so a replacement pod (on any node) starts with an empty one."""
        return self._workdir / "scratch" / f"{self.namespace}_{self.name}_{self.uid}"

    def _live(self) -> None:
        with self._cond:
            if self._deleting():
                self._finish_deleted(exit_code=None)
                return
        try:
            container = self._spec_container()
            self._assign_ports(container)
        except HarnessError as exc:
            self._report_waiting("CreateContainerConfigError", str(exc), phase="Pending")
            self._wait_for_deletion()
            return
        policy = (self._pod.get("spec") or {}).get("restartPolicy", "Always")
        while True:
            if not self._start_container(container):
                self._wait_for_deletion()
                return
            process = self._container
            assert process is not None
            with self._cond:
                while process.running and not self._deleting():
                    self._cond.wait(0.5)
                deleting = self._deleting()
            if deleting:
                code = process.kill(grace_seconds=self._grace())
                self._finish_deleted(exit_code=code)
                return
            process.wait()
            exited = process.exit_code
            assert exited is not None
            restart = policy == "Always" or (policy == "OnFailure" and exited != 0)
            if not restart:
                self._report_terminated(process, phase="Succeeded" if exited == 0 else "Failed")
                self._wait_for_deletion()
                return
            self._restarts += 1
            delay = crash_loop_delay(self._restarts)
            self._report_terminated(process, phase="Running", waiting="CrashLoopBackOff" if delay else "")
            with self._cond:
                deadline = time.monotonic() + delay
                while not self._deleting() and time.monotonic() < deadline:
                    self._cond.wait(deadline - time.monotonic())
                if self._deleting():
                    self._finish_deleted(exit_code=None)
                    return
            container = self._spec_container()

    def _wait_for_deletion(self) -> None:
        with self._cond:
            while not self._deleting():
                self._cond.wait()
        self._finish_deleted(exit_code=None)

    def _assign_ports(self, container: Mapping[str, Any]) -> None:
        """Pods here share the host's loopback address: each named container port gets a free host port."""
        annotations = dict(self._pod["metadata"].get("annotations") or {})
        changes: dict[str, str] = {}
        for port in container.get("ports") or []:
            name = port.get("name")
            if not name:
                continue
            host = str(self._allocate_port())
            if annotations.get("prometheus.io/port") == str(port["containerPort"]):
                changes["prometheus.io/port"] = host
            changes[PORT_ANNOTATION_PREFIX + name] = host
        finalizers = list(self._pod["metadata"].get("finalizers") or [])
        body: PodDict = {"metadata": {"annotations": changes}} if changes else {"metadata": {}}
        if FINALIZER not in finalizers:
            body["metadata"]["finalizers"] = [*finalizers, FINALIZER]
        self._patch_metadata(self.namespace, self.name, body)
        with self._cond:
            self._pod["metadata"].setdefault("annotations", {}).update(changes)

    def _start_container(self, container: Mapping[str, Any]) -> bool:
        argv = [*(container.get("command") or []), *(container.get("args") or [])]
        resources = container.get("resources") or {}
        limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
        logfile = (self._workdir / "pods" / f"{self.namespace}_{self.name}_{self.uid}" / container["name"]
                   / f"{self._restarts}.log")
        cgroups = None
        try:
            if not argv:
                raise HarnessError("the container has no command: process nodes do not run images' entrypoints")
            if self._pod_cgroups is not None:
                cpu_parent = self._cpu_limits.group(cores=cpu_cores(limits["cpu"])) if "cpu" in limits else None
                cgroups = self._pod_cgroups.for_attempt(
                    label=f"pod {self.namespace}/{self.name} attempt {self._restarts}",
                    memory_limit=memory_bytes(limits["memory"]) if "memory" in limits else None,
                    cpu_parent=cpu_parent)
            env = container_env(self._pod, container, image_overrides(self._workdir, self._node))
            if not any(item.get("name") == "TMPDIR" for item in container.get("env") or []):
                scratch = self._scratch_dir()
                scratch.mkdir(parents=True, exist_ok=True)
                env["TMPDIR"] = str(scratch)
            process = ContainerProcess(
                argv=argv, env=env, cwd=Path(container.get("workingDir") or self._pod_cwd), logfile=logfile,
                undo=self._undo, description=f"pod {self.namespace}/{self.name} on {self._node}",
                cpu_limits=self._cpu_limits,
                cpu_limit=cpu_cores(limits["cpu"]) if "cpu" in limits else None,
                cpu_request=cpu_cores(requests["cpu"]) if "cpu" in requests else None,
                cgroups=cgroups,
            )
        except (OSError, HarnessError) as exc:
            if cgroups is not None:
                cgroups.remove()  # made for an attempt that never ran: nothing else would remove them
            logfile.parent.mkdir(parents=True, exist_ok=True)
            with open(logfile, "a", encoding="utf-8") as out:
                out.write(f"cannot start {argv}: {exc}\n")
            self._report_waiting("CreateContainerError", str(exc), phase="Pending")
            return False
        with self._cond:
            self._container = process
            self._attempt_logs.append(logfile)
        self._report_running(process)
        self._apply_faults(self._pod, process)  # annotations set before this attempt started apply to it too
        return True

    # --- status ----------------------------------------------------------------

    def _container_name(self) -> str:
        return str(((self._pod.get("spec") or {}).get("containers") or [{}])[0].get("name", "main"))

    def _base_status(self, phase: str, *, ready: bool) -> PodDict:
        flag = "True" if ready else "False"
        return {
            "phase": phase,
            "hostIP": "127.0.0.1",
            "podIP": "127.0.0.1",
            "podIPs": [{"ip": "127.0.0.1"}],
            "startTime": _iso(self._started_at),
            "conditions": [
                {"type": "Initialized", "status": "True", "lastTransitionTime": _now()},
                {"type": "ContainersReady", "status": flag, "lastTransitionTime": _now()},
                {"type": "Ready", "status": flag, "lastTransitionTime": _now()},
            ],
        }

    def _container_status(self, state: PodDict, *, last: PodDict | None, ready: bool, pid: int = 0) -> PodDict:
        status: PodDict = {
            "name": self._container_name(),
            "image": str(self._spec_container_safe().get("image", "")),
            "imageID": "",
            "containerID": f"process://{pid}" if pid else None,
            "ready": ready,
            "started": ready,
            "restartCount": self._restarts,
            # Strategic merge keeps keys it is not told to drop: null out the other states.
            "state": {"waiting": None, "running": None, "terminated": None, **state},
        }
        if last is not None:
            status["lastState"] = {"waiting": None, "running": None, "terminated": None, **last}
        return status

    def _spec_container_safe(self) -> Mapping[str, Any]:
        containers = (self._pod.get("spec") or {}).get("containers") or [{}]
        container: Mapping[str, Any] = containers[0]
        return container

    def _terminated(self, process: ContainerProcess) -> PodDict:
        code = process.exit_code if process.exit_code is not None else 137
        # As a kubelet: a container the kernel's OOM killer ended (its memory cgroup counted the kill) is OOMKilled.
        oom = not process.running and self._faults.settle(process)
        return {"terminated": {
            "exitCode": code,
            "reason": "OOMKilled" if oom else ("Completed" if code == 0 else "Error"),
            "startedAt": _iso(process.started_at),
            "finishedAt": _iso(process.finished_at or time.time()),
            "containerID": f"process://{process.pid}",
        }}

    def _report(self, status: PodDict) -> None:
        try:
            self._patch_status(self.namespace, self.name, {"status": status})
        except Exception as exc:  # the pod may be gone already; the next report or deletion settles it
            log.debug("pod %s/%s: status not reported: %s", self.namespace, self.name, exc)

    def _report_running(self, process: ContainerProcess) -> None:
        status = self._base_status("Running", ready=True)
        last = self._last_terminated
        status["containerStatuses"] = [self._container_status(
            {"running": {"startedAt": _iso(process.started_at)}}, last=last, ready=True, pid=process.pid)]
        self._report(status)

    def _report_terminated(self, process: ContainerProcess, *, phase: str, waiting: str = "") -> None:
        terminated = self._terminated(process)
        status = self._base_status(phase, ready=False)
        if waiting or phase == "Running":
            # Restarting in place: the ended attempt becomes lastState.
            self._last_terminated = terminated
            state = {"waiting": {"reason": waiting or "ContainerCreating"}}
            status["containerStatuses"] = [self._container_status(state, last=terminated, ready=False)]
        else:
            status["containerStatuses"] = [self._container_status(terminated, last=self._last_terminated,
                                                                  ready=False, pid=process.pid)]
        self._report(status)

    def _report_waiting(self, reason: str, message: str, *, phase: str) -> None:
        status = self._base_status(phase, ready=False)
        status["containerStatuses"] = [self._container_status(
            {"waiting": {"reason": reason, "message": message[:500]}}, last=None, ready=False)]
        self._report(status)

    def _finish_deleted(self, *, exit_code: int | None) -> None:
        """Report the final state (a deleted pod of any restart policy ends Failed unless it
        completed), then remove the object as a kubelet does once its containers are gone."""
        process = self._container
        if process is not None and process.running:
            process.kill(grace_seconds=0)
        if process is not None:
            # Its cgroups go with it, before the pod object does: a pod gone from the API has left nothing behind.
            self._faults.settle(process)
        if not self._gone:
            if process is not None and exit_code is not None:
                self._report_terminated(process, phase="Succeeded" if exit_code == 0 else "Failed")
            try:
                # A JSON patch: a strategic merge would add to the finalizer list, never remove from it. "add"
                # replaces the list, and also works where our finalizer never made it onto the object.
                kept = [f for f in (self._pod["metadata"].get("finalizers") or []) if f != FINALIZER]
                self._patch_metadata(self.namespace, self.name, [
                    {"op": "add", "path": "/metadata/finalizers", "value": kept}])
            except Exception as exc:
                log.debug("pod %s/%s: finalizer not removed: %s", self.namespace, self.name, exc)
            try:
                self._remove(self.namespace, self.name, self.uid)
            except Exception as exc:
                log.debug("pod %s/%s: not removed: %s", self.namespace, self.name, exc)
        log.info("pod %s/%s %s", self.namespace, self.name, "gone from the API" if self._gone else "removed")


