"""The process cluster: Kubernetes pod/Job/node semantics with local processes.

* A **pod** is one container attempt of a Job: a process group started with the
  job's command and environment, its stdout/stderr kept in
  ``workdir/pods/<pod>/{stdout,stderr}.log`` (a retry is a new pod, so the logs
  of every attempt stay, as with ``restartPolicy: Never``).
* **Deletion** follows the pod termination contract: SIGTERM to the group, wait
  the grace period, SIGKILL the group. Exit codes read as Kubernetes reports
  them: 128+N after signal N (143 SIGTERM, 137 SIGKILL).
* The **Job controller** runs one pod at a time and replaces a failed pod after
  ``min(base * 2**(failures-1), max)`` seconds until failures exceed
  ``backoff_limit``. A deleted pod counts as failed, as for Kubernetes Jobs.
* The **scheduler** places Pending pods on uncordoned nodes with a free slot:
  highest priority first, then FIFO; least-loaded node first, ties by name.
  ``max_running_pods`` models a ResourceQuota on running pods; ``scoped_quotas``
  (``{"kind=backfill": 2}``) a quota scoped to pods with that label, as a
  ResourceQuota with a PriorityClass scope selector.

Threads: one reader (stdout → log + events) and one waiter (reaps the process)
per pod, a timer per backoff, and one dispatcher that delivers events to the
sinks in order. Sinks are called from the dispatcher only, one call at a time;
a sink may call ``delete_pod``/``cordon``/``drain`` but must not block on
``wait_job`` (that waits for the dispatcher itself).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

from harness import lifecycle
from harness.cluster.cpu_limits import CpuLimits
from harness.cluster.base import EventSink, JobSpec, JobStatus, NodeInfo, PodInfo, PodPhase
from harness.errors import HarnessError
from harness.history.events import Event, JobFinished, PodExited, PodStarted, from_json
from harness.undo import UndoLog

__all__ = ["ProcessCluster", "CLOSE_GRACE_CAP_SECONDS", "JOB_NAME_LABEL"]

log = logging.getLogger(__name__)

CLOSE_GRACE_CAP_SECONDS = 10.0
"""``close()`` gives each pod its own grace period, but at most this long."""

JOB_NAME_LABEL = "job-name"
"""Label every pod carries with its Job's name, as Kubernetes adds ``job-name``."""

_READER_JOIN_SECONDS = 5.0


@dataclass(kw_only=True)
class _Node:
    name: str
    slots: int
    schedulable: bool = True
    running: int = 0


@dataclass(kw_only=True)
class _Job:
    spec: JobSpec
    sink: EventSink
    failures: int = 0
    succeeded: bool = False
    finished: bool = False  # terminal condition reached (or deleted)
    delivered: bool = False  # JobFinished has been passed to the sink (or none will come)
    deleted: bool = False
    attempts: int = 0
    active: str | None = None  # name of the current pod
    timer: threading.Timer | None = None


@dataclass(kw_only=True)
class _Pod:
    name: str
    job: str
    attempt: int
    seq: int
    priority: int
    labels: Mapping[str, str]
    grace: float
    node: str = ""
    phase: PodPhase = "Pending"
    pid: int = 0
    exit_code: int | None = None
    reason: str = ""
    metrics_endpoint: str = ""
    proc: subprocess.Popen[bytes] | None = None
    exited: bool = False  # the main process has exited: signal it no more
    deletion_reason: str = ""  # "Deleted"/"Evicted" once deletion began
    reader: threading.Thread | None = None
    waiter: threading.Thread | None = None

    def info(self) -> PodInfo:
        return PodInfo(
            name=self.name,
            job=self.job,
            attempt=self.attempt,
            node=self.node,
            phase=self.phase,
            labels=dict(self.labels),
            pid=self.pid,
            exit_code=self.exit_code,
            reason=self.reason,
            metrics_endpoint=self.metrics_endpoint,
        )

    @property
    def terminal(self) -> bool:
        return self.phase in ("Succeeded", "Failed")


_Delivery = tuple[EventSink, Event, "Callable[[], None] | None"]


class ProcessCluster:
    """Implements :class:`harness.cluster.base.Cluster` (all but ``endpoint``) with processes.

    ``nodes`` maps node name to slots (pods that may run there at once).
    ``on_pods_changed`` receives a snapshot of all pods whenever a pod starts or
    stops; calls are serialized and the last call sees the latest state.
    Pods run in ``pod_cwd`` (default: the harness' working directory at
    construction, playing the part of the image's WORKDIR), so ``python -m
    package`` commands find the project as they do in the harness.
    """

    def __init__(
        self,
        *,
        nodes: Mapping[str, int],
        workdir: Path,
        undo: UndoLog,
        max_running_pods: int | None = None,
        scoped_quotas: Mapping[str, int] | None = None,
        on_pods_changed: Callable[[list[PodInfo]], None] | None = None,
        pod_cwd: Path | None = None,
    ) -> None:
        if not nodes:
            raise HarnessError("a process cluster needs at least one node; pass nodes={'node-a': 2}")
        for name, slots in nodes.items():
            if slots < 1:
                raise HarnessError(f"node {name!r} has {slots} slots; give every node at least 1 slot")
        if max_running_pods is not None and max_running_pods < 1:
            raise HarnessError(f"max_running_pods={max_running_pods} would run nothing; use None or >= 1")
        self._workdir = Path(workdir)
        (self._workdir / "pods").mkdir(parents=True, exist_ok=True)
        self._pod_cwd = Path(pod_cwd) if pod_cwd is not None else Path.cwd()
        self._undo = undo
        self._quota = max_running_pods
        self._scoped = {_label_pair(scope): limit for scope, limit in (scoped_quotas or {}).items()}
        self.cpu_limits = CpuLimits(undo=undo, name=f"ml-chaos-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        self._on_pods_changed = on_pods_changed
        self._nodes = {name: _Node(name=name, slots=slots) for name, slots in nodes.items()}
        self._jobs: dict[str, _Job] = {}
        self._pods: dict[str, _Pod] = {}  # insertion order = creation order
        self._seq = 0
        self._closed = False
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._changed_lock = threading.Lock()
        self._events: queue.SimpleQueue[_Delivery | None] = queue.SimpleQueue()
        self._dispatcher = threading.Thread(target=self._dispatch, name="cluster-events", daemon=True)
        self._dispatcher.start()

    # --- context manager -----------------------------------------------------

    def __enter__(self) -> ProcessCluster:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- queries ---------------------------------------------------------------

    def nodes(self) -> list[NodeInfo]:
        with self._lock:
            return [
                NodeInfo(name=n.name, slots=n.slots, schedulable=n.schedulable, running=n.running)
                for n in sorted(self._nodes.values(), key=lambda n: n.name)
            ]

    def list_pods(self, *, labels: Mapping[str, str] | None = None) -> list[PodInfo]:
        """Pods whose labels include ``labels``, oldest first (terminated ones included)."""
        want = dict(labels or {})
        with self._lock:
            return [
                p.info()
                for p in self._pods.values()
                if all(p.labels.get(k) == v for k, v in want.items())
            ]

    def pod(self, name: str) -> PodInfo:
        with self._lock:
            return self._pod(name).info()

    def pod_log_dir(self, name: str) -> Path:
        """Where ``stdout.log``/``stderr.log`` of pod ``name`` are."""
        with self._lock:
            self._pod(name)
        return self._workdir / "pods" / name

    def job_status(self, name: str) -> JobStatus:
        with self._lock:
            return self._status(self._job(name))

    def wait_job(self, name: str, *, timeout: float) -> JobStatus:
        """Block until the Job succeeded, failed for good or was deleted, and its
        ``JobFinished`` event has reached the sink. HarnessError on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            job = self._job(name)
            while not (job.finished and job.delivered):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    status = self._status(job)
                    raise HarnessError(
                        f"job {name!r} did not finish within {timeout:g} s (active={status.active}, "
                        f"failed={status.failed}); raise the timeout or look at {self._workdir / 'pods'}"
                    )
                self._cond.wait(remaining)
            return self._status(job)

    # --- jobs ------------------------------------------------------------------

    def submit_job(self, spec: JobSpec, *, sink: EventSink) -> None:
        """Create the Job; its first pod is Pending until the scheduler places it."""
        if not spec.command:
            raise HarnessError(f"job {spec.name!r} has an empty command; give JobSpec.command")
        if spec.backoff_limit < 0:
            raise HarnessError(f"job {spec.name!r} has backoff_limit={spec.backoff_limit}; use 0 or more")
        with self._lock:
            self._check_open()
            if spec.name in self._jobs:
                raise HarnessError(f"job {spec.name!r} already exists; delete it first or choose another name")
            self._jobs[spec.name] = _Job(spec=spec, sink=sink)
            self._create_pod_locked(self._jobs[spec.name])
            self._schedule_locked()
        self._pods_changed()

    def delete_job(self, name: str) -> None:
        """No new pods; the running pod is deleted with its grace period (blocks until it ended)."""
        with self._cond:
            job = self._job(name)
            if job.deleted:
                return
            job.deleted = True
            if job.timer is not None:
                job.timer.cancel()
            active = job.active
            if not job.finished:
                # A deleted Job never reports a terminal condition: no JobFinished.
                job.finished = job.delivered = True
            self._cond.notify_all()
        if active is not None:
            self._delete(active, grace=None, reason="Deleted")

    # --- pods ------------------------------------------------------------------

    def delete_pod(self, name: str, *, grace_period_seconds: float | None = None) -> PodInfo:
        """SIGTERM the pod's group, wait the grace period (the Job's when None),
        SIGKILL the group. Returns the pod as it ended. Reason ``"Deleted"``."""
        return self._delete(name, grace=grace_period_seconds, reason="Deleted")

    def cordon(self, node: str) -> None:
        with self._lock:
            self._node(node).schedulable = False

    def uncordon(self, node: str) -> None:
        with self._lock:
            self._node(node).schedulable = True
            self._schedule_locked()
        self._pods_changed()

    def drain(self, node: str, *, grace_period_seconds: float | None = None) -> list[PodInfo]:
        """Cordon ``node`` and evict its running pods in parallel (reason ``"Evicted"``);
        their Jobs replace them on other nodes. Returns the evicted pods as they ended."""
        with self._lock:
            self._node(node).schedulable = False
            names = [p.name for p in self._pods.values() if p.node == node and p.phase == "Running"]
        results: dict[str, PodInfo] = {}
        errors: list[BaseException] = []

        def evict(pod: str) -> None:
            try:
                results[pod] = self._delete(pod, grace=grace_period_seconds, reason="Evicted")
            except BaseException as exc:  # reported below, after all evictions
                errors.append(exc)

        threads = [threading.Thread(target=evict, args=(n,), name=f"evict-{n}") for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return [results[n] for n in names]

    # --- shutdown --------------------------------------------------------------

    def close(self, *, grace_period_seconds: float | None = None) -> None:
        """Delete every Job and pod (each pod's grace period, at most
        CLOSE_GRACE_CAP_SECONDS, when ``grace_period_seconds`` is None), wait for
        every process to be reaped and every event to be delivered. Idempotent."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            for job in self._jobs.values():
                job.deleted = True
                if job.timer is not None:
                    job.timer.cancel()
                if not job.finished:
                    job.finished = job.delivered = True
            for pod in self._pods.values():
                if pod.phase == "Pending":
                    self._end_pending_locked(pod, reason="Deleted")
            running = [p for p in self._pods.values() if p.phase == "Running"]
            self._cond.notify_all()
        threads = []
        for pod in running:
            grace = grace_period_seconds
            if grace is None:
                grace = min(pod.grace, CLOSE_GRACE_CAP_SECONDS)
            t = threading.Thread(target=self._delete, args=(pod.name,), kwargs={"grace": grace, "reason": "Deleted"})
            t.start()
            threads.append(t)
        for t in threads:
            t.join()
        with self._lock:
            waiters = [p.waiter for p in self._pods.values() if p.waiter is not None]
        for w in waiters:
            w.join()
        self.cpu_limits.close()
        self._events.put(None)
        if threading.current_thread() is not self._dispatcher:
            self._dispatcher.join()
        self._pods_changed()

    # --- internals: lookups ----------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise HarnessError("the process cluster is closed; start a new one")

    def _job(self, name: str) -> _Job:
        try:
            return self._jobs[name]
        except KeyError:
            raise HarnessError(f"no job named {name!r}; known jobs: {sorted(self._jobs) or 'none'}") from None

    def _pod(self, name: str) -> _Pod:
        try:
            return self._pods[name]
        except KeyError:
            raise HarnessError(f"no pod named {name!r}; list them with list_pods()") from None

    def _node(self, name: str) -> _Node:
        try:
            return self._nodes[name]
        except KeyError:
            raise HarnessError(f"no node named {name!r}; known nodes: {sorted(self._nodes)}") from None

    def _status(self, job: _Job) -> JobStatus:
        active = 1 if job.active is not None and not self._pods[job.active].terminal else 0
        return JobStatus(
            name=job.spec.name, active=active, failed=job.failures, succeeded=job.succeeded, finished=job.finished
        )

    # --- internals: events -----------------------------------------------------

    def _emit(self, job: _Job, event: Event, on_delivered: Callable[[], None] | None = None) -> None:
        self._events.put((job.sink, event, on_delivered))

    def _dispatch(self) -> None:
        while True:
            item = self._events.get()
            if item is None:
                return
            sink, event, on_delivered = item
            try:
                sink(event)
            except Exception:  # a broken sink must not stop the cluster
                log.exception("event sink failed on %s", event.KIND)
            if on_delivered is not None:
                on_delivered()

    def _pods_changed(self) -> None:
        if self._on_pods_changed is None:
            return
        # Snapshot inside the lock so the last call always carries the latest state.
        with self._changed_lock:
            try:
                self._on_pods_changed(self.list_pods())
            except Exception:
                log.exception("on_pods_changed failed")

    # --- internals: controller and scheduler -----------------------------------

    def _create_pod_locked(self, job: _Job) -> None:
        spec = job.spec
        name = f"{spec.name}-{job.attempts}"
        self._seq += 1
        pod = _Pod(
            name=name,
            job=spec.name,
            attempt=job.attempts,
            seq=self._seq,
            priority=spec.priority,
            labels={**spec.labels, JOB_NAME_LABEL: spec.name},
            grace=spec.termination_grace_period_seconds,
        )
        job.attempts += 1
        job.active = name
        self._pods[name] = pod

    def _schedule_locked(self) -> None:
        """Start Pending pods while a node slot and the quota allow."""
        if self._closed:
            return
        pending = sorted((p for p in self._pods.values() if p.phase == "Pending"), key=lambda p: (-p.priority, p.seq))
        for pod in pending:
            if pod.phase != "Pending":
                continue  # a nested call (a pod that could not start) placed it already
            running = sum(n.running for n in self._nodes.values())
            if self._quota is not None and running >= self._quota:
                return
            if self._scope_full_locked(pod):
                continue  # a pod outside that scope may still fit
            free = [n for n in self._nodes.values() if n.schedulable and n.running < n.slots]
            if not free:
                return  # every pod needs one slot: if this one does not fit, none does
            node = min(free, key=lambda n: (n.running, n.name))
            self._start_pod_locked(pod, node)

    def _scope_full_locked(self, pod: _Pod) -> bool:
        """True when a scoped quota that covers ``pod`` has no room left."""
        for (key, value), limit in self._scoped.items():
            if pod.labels.get(key) == value:
                used = sum(1 for p in self._pods.values() if p.phase == "Running" and p.labels.get(key) == value)
                if used >= limit:
                    return True
        return False

    def _start_pod_locked(self, pod: _Pod, node: _Node) -> None:
        job = self._jobs[pod.job]
        spec = job.spec
        logdir = self._workdir / "pods" / pod.name
        logdir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **spec.env, "POD_NAME": pod.name, "JOB_NAME": spec.name, "NODE_NAME": node.name}
        if spec.expose_metrics:
            port = lifecycle.free_port()
            env["METRICS_PORT"] = str(port)
            pod.metrics_endpoint = f"127.0.0.1:{port}"
        pod.node = node.name
        node.running += 1
        stdout_log = open(logdir / "stdout.log", "wb")
        stderr_log = open(logdir / "stderr.log", "wb")
        try:
            # CPU share, as a request/limit would give it: nice keeps pid and argv semantics (it execs).
            command = ("nice", "-n", str(spec.cpu_nice), *spec.command) if spec.cpu_nice else spec.command
            if spec.cpu_limit is not None:
                command = self.cpu_limits.wrap(command, cores=spec.cpu_limit)
            proc = lifecycle.spawn(
                command,
                env=env,
                cwd=self._pod_cwd,
                stdout=subprocess.PIPE,
                stderr=stderr_log,
                undo=self._undo,
                description=f"pod {pod.name} on {node.name}",
            )
        except OSError as exc:
            # Kubernetes reports a container that cannot start as StartError, exit 128.
            stderr_log.write(f"cannot start {list(spec.command)}: {exc}\n".encode())
            stderr_log.close()
            stdout_log.close()
            pod.phase = "Running"  # so _pod_ended_locked frees the slot it took
            self._pod_ended_locked(pod, exit_code=128, reason="StartError", started=False)
            return
        finally:
            if not stderr_log.closed:
                stderr_log.close()  # the child holds its own copy
        pod.proc = proc
        pod.pid = proc.pid
        pod.phase = "Running"
        self._emit(job, PodStarted(
            ts=time.time(), pod=pod.name, job=pod.job, attempt=pod.attempt, node=node.name, pid=proc.pid,
            labels=",".join(f"{k}={v}" for k, v in sorted(pod.labels.items())),
        ))
        assert proc.stdout is not None
        pod.reader = threading.Thread(
            target=self._read_stdout, args=(pod, job, proc.stdout, stdout_log), name=f"stdout-{pod.name}", daemon=True
        )
        pod.waiter = threading.Thread(target=self._wait_pod, args=(pod,), name=f"wait-{pod.name}", daemon=True)
        pod.reader.start()
        pod.waiter.start()

    def _read_stdout(self, pod: _Pod, job: _Job, pipe: IO[bytes], out: IO[bytes]) -> None:
        """Copy stdout to the log; every line that is a JSON event goes to the sink."""
        try:
            for raw in pipe:
                out.write(raw)
                out.flush()  # logs are read live (and after a SIGKILL of the harness)
                event = from_json(raw.decode("utf-8", "replace"), pod=pod.name, job=pod.job, attempt=pod.attempt, now=time.time())
                if event is not None:
                    # from_json only overrides attempt when it is truthy; attempt 0 must win too.
                    if event.attempt != pod.attempt:
                        event = _with_attempt(event, pod.attempt)
                    self._emit(job, event)
        except (OSError, ValueError):
            pass  # pipe closed under us
        finally:
            out.close()
            pipe.close()

    def _wait_pod(self, pod: _Pod) -> None:
        """The only place a pod's process is reaped."""
        proc = pod.proc
        assert proc is not None
        lifecycle.wait_exited(proc)
        with self._lock:
            pod.exited = True  # from here on, its pid may be reused: never signal it again
        code = lifecycle.finish(proc)
        if pod.reader is not None:
            pod.reader.join(_READER_JOIN_SECONDS)
        exit_code = 128 - code if code < 0 else code
        with self._cond:
            if pod.deletion_reason:
                reason = pod.deletion_reason
            else:
                reason = "Completed" if exit_code == 0 else "Error"
            self._pod_ended_locked(pod, exit_code=exit_code, reason=reason, started=True)
        self._pods_changed()

    def _pod_ended_locked(self, pod: _Pod, *, exit_code: int | None, reason: str, started: bool) -> None:
        """Record the end of a pod, run the Job controller, schedule what can run."""
        job = self._jobs[pod.job]
        if pod.phase == "Running":
            self._nodes[pod.node].running -= 1
        failed = exit_code != 0 or bool(pod.deletion_reason) or reason == "Deleted"
        pod.phase = "Failed" if failed else "Succeeded"
        pod.exit_code = exit_code
        pod.reason = reason
        if started or exit_code is not None:
            self._emit(
                job,
                PodExited(ts=time.time(), pod=pod.name, job=pod.job, attempt=pod.attempt, node=pod.node, exit_code=exit_code or 0, reason=reason),
            )
        if job.active == pod.name:
            job.active = None
        if not job.deleted and not job.finished:
            if not failed:
                self._finish_job_locked(job, succeeded=True)
            else:
                job.failures += 1
                if job.failures > job.spec.backoff_limit:
                    self._finish_job_locked(job, succeeded=False)
                else:
                    delay = min(job.spec.backoff_base_seconds * 2 ** (job.failures - 1), job.spec.backoff_max_seconds)
                    job.timer = threading.Timer(delay, self._retry, args=(job,))
                    job.timer.daemon = True
                    job.timer.start()
        self._schedule_locked()
        self._cond.notify_all()

    def _finish_job_locked(self, job: _Job, *, succeeded: bool) -> None:
        job.succeeded = succeeded
        job.finished = True

        def delivered() -> None:
            with self._cond:
                job.delivered = True
                self._cond.notify_all()

        self._emit(job, JobFinished(ts=time.time(), job=job.spec.name, succeeded=succeeded, failures=job.failures), delivered)

    def _retry(self, job: _Job) -> None:
        with self._lock:
            if job.deleted or job.finished or self._closed:
                return
            job.timer = None
            self._create_pod_locked(job)
            self._schedule_locked()
        self._pods_changed()

    def _end_pending_locked(self, pod: _Pod, *, reason: str) -> None:
        """A pod deleted before it ran: it counts as failed but has no container to report."""
        pod.deletion_reason = reason
        self._pod_ended_locked(pod, exit_code=None, reason=reason, started=False)

    def _delete(self, name: str, *, grace: float | None, reason: str) -> PodInfo:
        with self._cond:
            pod = self._pod(name)
            if pod.terminal:
                return pod.info()
            if pod.phase == "Pending":
                self._end_pending_locked(pod, reason=reason)
                info = pod.info()
            else:
                info = None
                if not pod.deletion_reason:
                    pod.deletion_reason = reason
                if grace is None:
                    grace = pod.grace
                if grace < 0:
                    raise HarnessError(f"grace period {grace} for pod {name!r} is negative; use 0 or more")
                self._signal_locked(pod, signal.SIGTERM if grace > 0 else signal.SIGKILL)
                deadline = time.monotonic() + grace
                while not pod.terminal:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                if not pod.terminal:
                    self._signal_locked(pod, signal.SIGKILL)
                    # SIGKILL cannot be ignored; the waiter thread reaps promptly.
                    while not pod.terminal:
                        self._cond.wait(1.0)
                info = pod.info()
        if info is not None and info.phase != "Running":
            self._pods_changed()
        return info

    def _signal_locked(self, pod: _Pod, sig: int) -> None:
        if pod.proc is not None and not pod.exited:
            lifecycle.signal_group(pod.proc, sig)


def _with_attempt(event: Event, attempt: int) -> Event:
    return dataclasses.replace(event, attempt=attempt)


def _label_pair(scope: str) -> tuple[str, str]:
    key, sep, value = scope.partition("=")
    if not sep or not key:
        raise HarnessError(f"a scoped quota is keyed by 'label=value', got {scope!r}")
    return key, value
