"""The one collector that turns a namespace's pods into history events, on every cluster.

It watches the pods and Jobs the harness manages. For every container attempt
(a new pod, or a container restarted in place) it emits ``PodStarted``, follows
the attempt's log through the API (``pods/log``, ``follow``; ``previous`` when
the container has already been restarted), turns each JSON line into a
pipeline event, and emits ``PodExited`` with the exit code and reason from pod
status once the log has ended. ``JobFinished`` follows when the Job has a
terminal condition and every attempt of its pods has been reported.

Attempts are numbered per Job in the order they started (0, 1, ...), across
replacement pods and in-place restarts alike, so the checks see every attempt.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import urllib3
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from harness.cluster.base import EventSink, PodInfo
from harness.cluster.kube.manifests import JOB_NAME_LABEL
from harness.cluster.kube.objects import pod_phase
from harness.errors import ServiceError
from harness.history.events import JobFinished, PodExited, PodStarted, from_json

__all__ = ["PodEventCollector", "UNKNOWN_EXIT"]

log = logging.getLogger(__name__)

UNKNOWN_EXIT = -1
"""The exit code of an attempt whose end the cluster never reported (its pod vanished first)."""

_LOG_RETRY_SECONDS = 0.1
_LOG_ATTEMPTS = 50
_JOB_SETTLE_SECONDS = 15.0  # how long a finished Job waits for its pods' last logs


@dataclass(kw_only=True)
class _Attempt:
    pod: str
    job: str
    restart: int  # the container's restartCount for this attempt
    number: int  # the attempt's number within its Job
    node: str
    exit: tuple[int, str] | None = None
    logs_done: bool = False
    reported: bool = False


@dataclass(kw_only=True)
class _Pod:
    uid: str
    info: PodInfo
    restart_count: int = 0
    attempts: dict[int, _Attempt] = field(default_factory=dict)


@dataclass(kw_only=True)
class _Job:
    name: str
    sink: EventSink
    attempts: int = 0
    terminal: bool | None = None  # None while running; True succeeded; False failed
    finished: bool = False  # terminal (or deleted) and reported
    deleted: bool = False


class PodEventCollector:
    """Watches ``namespace``; call :meth:`track` before creating a Job whose events you want."""

    def __init__(self, *, core: client.CoreV1Api, batch: client.BatchV1Api, namespace: str,
                 serialize: Callable[[Any], Any]) -> None:
        self._core = core
        self._batch = batch
        self._namespace = namespace
        self._serialize = serialize
        self._pods: dict[str, _Pod] = {}  # by uid
        self._by_name: dict[str, PodInfo] = {}  # last state of every pod seen, also after removal
        self._jobs: dict[str, _Job] = {}
        self._cond = threading.Condition()
        self._emit_lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._watch, args=("pods",), name="watch-pods", daemon=True),
            threading.Thread(target=self._watch, args=("jobs",), name="watch-jobs", daemon=True),
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()

    # --- queries -------------------------------------------------------------------

    def track(self, job: str, sink: EventSink) -> None:
        with self._cond:
            self._jobs[job] = _Job(name=job, sink=sink)

    def forget_job(self, job: str) -> None:
        """The Job was deleted: it reports no terminal condition."""
        with self._cond:
            state = self._jobs.get(job)
            if state is not None:
                state.deleted = True
                state.finished = True
            self._cond.notify_all()

    def job_finished(self, job: str) -> tuple[bool, bool | None]:
        """(reported, succeeded): whether the Job's end has reached its sink, and how it ended."""
        with self._cond:
            state = self._jobs.get(job)
            if state is None:
                return False, None
            return state.finished, state.terminal

    def job_failures(self, job: str) -> int:
        with self._cond:
            return sum(1 for p in self._pods.values() for a in p.attempts.values()
                       if a.job == job and a.exit is not None and a.exit[0] != 0)

    def pod_gone(self, name: str) -> bool:
        """The pod object was removed and every attempt of it has been reported to its sink."""
        with self._cond:
            info = self._by_name.get(name)
            if info is None or not info.gone:
                return False
            return all(a.reported for p in self._pods.values() if p.info.name == name for a in p.attempts.values())

    def pod(self, name: str) -> PodInfo | None:
        with self._cond:
            return self._by_name.get(name)

    def wait(self, predicate: Callable[[], bool], *, timeout: float) -> bool:
        """Wait until ``predicate()`` (evaluated under the collector's lock) holds; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopping.is_set():
                    return predicate()
                self._cond.wait(min(remaining, 1.0))
            return True

    # --- watches -------------------------------------------------------------------

    def _watch(self, kind: str) -> None:
        lister = (self._core.list_namespaced_pod if kind == "pods" else self._batch.list_namespaced_job)
        handle = self._on_pod if kind == "pods" else self._on_job
        while not self._stopping.is_set():
            try:
                listed = lister(self._namespace)
                for item in listed.items:
                    handle("MODIFIED", self._serialize(item))
                version = listed.metadata.resource_version if listed.metadata else None
                for event in watch.Watch().stream(lister, self._namespace, timeout_seconds=120,
                                                  resource_version=version):
                    if self._stopping.is_set():
                        return
                    handle(str(event["type"]), self._serialize(event["object"]))
            except Exception as exc:  # an expired resource version or a dropped connection: list again
                if self._stopping.is_set():
                    return
                log.info("%s watch restarts: %s", kind, exc)
                self._stopping.wait(0.5)

    def _on_job(self, kind: str, job: dict[str, Any]) -> None:
        name = job["metadata"]["name"]
        conditions = (job.get("status") or {}).get("conditions") or []
        terminal: bool | None = None
        for c in conditions:
            if c.get("status") == "True" and c.get("type") in ("Complete", "Failed"):
                terminal = c["type"] == "Complete"
        with self._cond:
            state = self._jobs.get(name)
            if state is None or state.finished or terminal is None:
                return
            state.terminal = terminal
        threading.Thread(target=self._settle_job, args=(state,), name=f"settle-{name}", daemon=True).start()

    def _settle_job(self, state: _Job) -> None:
        """Report the Job's end once each attempt of its pods has been reported (or after a bound)."""
        def settled() -> bool:
            return all(a.reported for p in self._pods.values() for a in p.attempts.values() if a.job == state.name)

        self.wait(settled, timeout=_JOB_SETTLE_SECONDS)
        failures = self.job_failures(state.name)
        with self._cond:
            if state.finished:
                return
        self._emit(state.sink, JobFinished(ts=time.time(), job=state.name, succeeded=bool(state.terminal),
                                           failures=failures))
        with self._cond:
            state.finished = True
            self._cond.notify_all()

    def _on_pod(self, kind: str, pod: dict[str, Any]) -> None:
        meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
        uid, name = meta["uid"], meta["name"]
        labels = dict(meta.get("labels") or {})
        job = labels.get(JOB_NAME_LABEL, "")
        statuses = status.get("containerStatuses") or []
        cs = statuses[0] if statuses else {}
        state, last = cs.get("state") or {}, cs.get("lastState") or {}
        restarts = int(cs.get("restartCount") or 0)
        ended = state.get("terminated") or last.get("terminated") or {}
        info = PodInfo(
            name=name, job=job, node=spec.get("nodeName") or "", phase=pod_phase(status.get("phase")), labels=labels,
            restart_count=restarts, exit_code=ended.get("exitCode"), reason=ended.get("reason") or "",
            deleting=bool(meta.get("deletionTimestamp")), gone=kind == "DELETED",
        )
        start: list[_Attempt] = []
        report: list[_Attempt] = []
        with self._cond:
            tracked = self._jobs.get(job)
            self._by_name[name] = info
            current = self._pods.get(uid)
            if current is None:
                current = self._pods[uid] = _Pod(uid=uid, info=info)
            current.info = info
            current.restart_count = max(current.restart_count, restarts)
            if tracked is not None:
                exists_now = bool(state.get("running") or state.get("terminated"))
                top = restarts if exists_now else restarts - 1  # the newest attempt known to have run
                for k in range(max(current.attempts, default=-1) + 1, top + 1):
                    attempt = _Attempt(pod=name, job=job, restart=k, number=tracked.attempts, node=info.node)
                    if k < restarts - 1:  # seen too late: the kubelet keeps only the previous attempt's log
                        attempt.logs_done, attempt.exit = True, (UNKNOWN_EXIT, "Unknown")
                    tracked.attempts += 1
                    current.attempts[k] = attempt
                    start.append(attempt)
                if state.get("terminated") and restarts in current.attempts:
                    t = state["terminated"]
                    current.attempts[restarts].exit = (int(t.get("exitCode", UNKNOWN_EXIT)), t.get("reason") or "")
                if last.get("terminated") and restarts - 1 in current.attempts:
                    t = last["terminated"]
                    a = current.attempts[restarts - 1]
                    if a.exit is None:
                        a.exit = (int(t.get("exitCode", UNKNOWN_EXIT)), t.get("reason") or "")
                if kind == "DELETED":
                    for a in current.attempts.values():
                        if a.exit is None:
                            a.exit = (UNKNOWN_EXIT, "Unknown")
                report = [a for a in current.attempts.values() if a.exit is not None and a.logs_done
                          and not a.reported]
                for a in report:
                    a.reported = True
            self._cond.notify_all()
        for attempt in start:
            self._emit(tracked.sink if tracked else None, PodStarted(
                ts=time.time(), pod=name, job=job, attempt=attempt.number, node=attempt.node, pid=0,
                labels=",".join(f"{k}={v}" for k, v in sorted(labels.items())),
            ))
            if not attempt.logs_done:
                threading.Thread(target=self._follow, args=(attempt, tracked),
                                 name=f"logs-{name}-{attempt.restart}", daemon=True).start()
        for attempt in report:
            self._report_exit(attempt, tracked)

    # --- logs ----------------------------------------------------------------------

    def _follow(self, attempt: _Attempt, job: _Job | None) -> None:
        sink = job.sink if job is not None else None
        try:
            self._stream_log(attempt, sink)
        finally:
            with self._cond:
                attempt.logs_done = True
                ready = attempt.exit is not None and not attempt.reported
                if ready:
                    attempt.reported = True
                self._cond.notify_all()
            if ready:
                self._report_exit(attempt, job)

    def _stream_log(self, attempt: _Attempt, sink: EventSink | None) -> None:
        for _ in range(_LOG_ATTEMPTS):
            with self._cond:
                pod = next((p for p in self._pods.values() if p.info.name == attempt.pod), None)
                previous = pod is not None and pod.restart_count > attempt.restart
                gone = pod is None or pod.info.gone
            if gone and attempt.exit is not None:
                return
            try:
                # Unpreloaded, the client hands back the HTTP response its hints call a str.
                response: object = self._core.read_namespaced_pod_log(
                    attempt.pod, self._namespace, container="main", follow=not previous, previous=previous,
                    _preload_content=False)
            except ApiException as exc:
                if exc.status in (400, 404):  # not started yet, or already gone
                    self._stopping.wait(_LOG_RETRY_SECONDS)
                    continue
                raise
            if not isinstance(response, urllib3.BaseHTTPResponse):
                raise ServiceError(f"the Kubernetes client returned {type(response).__name__} for a log stream")
            buffer = b""
            try:
                for chunk in response.stream(64 * 1024):
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        self._line(line, attempt, sink)
                if buffer:
                    self._line(buffer, attempt, sink)
            except urllib3.exceptions.HTTPError as exc:
                # The node serving the log went away mid-stream (a stopped node agent, a preempted node): what
                # arrived is kept; reading it again from the start would repeat those events.
                log.warning("the log of %s attempt %d ended early: %s", attempt.pod, attempt.restart, exc)
            finally:
                response.release_conn()
            return
        log.warning("no log could be read for %s attempt %d", attempt.pod, attempt.restart)

    def _line(self, raw: bytes, attempt: _Attempt, sink: EventSink | None) -> None:
        now = time.time()
        event = from_json(raw.decode("utf-8", "replace"), pod=attempt.pod, job=attempt.job,
                          attempt=attempt.number, now=now, received=now)
        if event is not None:
            self._emit(sink, event)

    def _report_exit(self, attempt: _Attempt, job: _Job | None) -> None:
        assert attempt.exit is not None
        code, reason = attempt.exit
        self._emit(job.sink if job else None, PodExited(
            ts=time.time(), pod=attempt.pod, job=attempt.job, attempt=attempt.number, node=attempt.node,
            exit_code=code, reason=reason or ("Completed" if code == 0 else "Error"),
        ))

    def _emit(self, sink: EventSink | None, event: Any) -> None:
        if sink is None:
            return
        with self._emit_lock:
            try:
                sink(event)
            except Exception:  # a broken sink must not stop the collector
                log.exception("event sink failed on %s", getattr(event, "KIND", event))


