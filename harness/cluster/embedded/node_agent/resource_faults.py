"""A pod's resource faults, as its annotations ask (:mod:`harness.cluster.fault_control`), on its running attempt.

One per pod worker. :meth:`ResourceFaults.apply` compares the pod's annotations with what was
applied last and changes only what differs, on the current attempt (a fault hits the attempt
running when its annotation is set or changed, or the pod's first one); it returns the status line the
node agent writes back (``mlchaos.io/fault-status``) or "" when nothing changed.
:meth:`ResourceFaults.settle` ends what a fault started once the attempt has exited (the memory
ballast) and says whether the kernel OOM-killed it, so its end reads ``OOMKilled``.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping

from harness import lifecycle
from harness.cluster.embedded.node_agent.container import ContainerProcess
from harness.cluster.embedded.node_agent.quantity import cpu_cores, memory_bytes
from harness.cluster.fault_control import CPU_LIMIT_ANNOTATION, FAULT_ANNOTATIONS
from harness.errors import HarnessError
from harness.undo import UndoLog

__all__ = ["ResourceFaults", "BALLAST_SECONDS"]

log = logging.getLogger(__name__)

BALLAST_SECONDS = 120.0  # the ballast's own bound, should the agent die before it kills it


class ResourceFaults:
    """Applies resource-fault annotations to a pod's current container attempt."""

    def __init__(self, *, undo: UndoLog, description: str) -> None:
        self._undo = undo
        self._description = description
        self._lock = threading.Lock()
        self._attempt: ContainerProcess | None = None
        self._applied: dict[str, str] = {}
        self._ballast: subprocess.Popen[bytes] | None = None
        self._settled: dict[int, bool] = {}  # by pid: whether the attempt was OOM-killed

    def apply(self, annotations: Mapping[str, str], attempt: ContainerProcess | None) -> str:
        """Bring ``attempt`` in line with ``annotations``; the status line to report, "" for no change."""
        with self._lock:
            # Edge-triggered: what was applied to an earlier attempt of this pod stays "applied", so a
            # container restarted in place starts with its own limits; a changed annotation acts again.
            running = attempt is not None and attempt.running
            if running:
                self._attempt = attempt
            lines = []
            for key in FAULT_ANNOTATIONS:
                wanted = annotations.get(key)
                if wanted == self._applied.get(key):
                    continue
                if attempt is None or not running:
                    if wanted is None:
                        self._applied.pop(key, None)  # nothing runs, so nothing to restore
                    continue  # a new value waits for the next attempt to start
                lines.append(f"{key}={wanted or '(removed)'}: {self._change(key, wanted, attempt)}")
            return "; ".join(lines)

    def _change(self, key: str, value: str | None, attempt: ContainerProcess) -> str:
        cgroups = attempt.cgroups
        if cgroups is None:
            if value is not None:
                self._applied[key] = value  # refused once: do not retry on every watch event
            else:
                self._applied.pop(key, None)
            return "refused: this node runs containers without cgroups of their own (needs root, cgroup v1)"
        try:
            if key == CPU_LIMIT_ANNOTATION:
                done = cgroups.set_cpu_limit(cpu_cores(value) if value is not None else None)
            else:
                done = cgroups.set_memory_limit(memory_bytes(value) if value is not None else None)
                if value is not None:
                    _mark_for_the_oom_killer(attempt.pid)
                    self._start_ballast(str(cgroups.memory / "cgroup.procs"))
                else:
                    self._stop_ballast()
        except (OSError, HarnessError) as exc:
            if value is not None:
                self._applied[key] = value
            return f"refused: {exc}"
        if value is None:
            self._applied.pop(key, None)
        else:
            self._applied[key] = value
        return f"applied: {done}"

    def _start_ballast(self, procs: str) -> None:
        if self._ballast is not None and self._ballast.poll() is None:
            return
        command = (sys.executable, "-m", "harness.cluster.embedded.node_agent.ballast", procs, str(BALLAST_SECONDS))
        self._ballast = lifecycle.spawn(command, env=None, cwd=None, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, undo=self._undo,
                                        description=f"memory ballast of {self._description}")

    def _stop_ballast(self) -> None:
        ballast, self._ballast = self._ballast, None
        if ballast is not None:
            lifecycle.signal_group(ballast, signal.SIGKILL)
            lifecycle.finish(ballast)

    def settle(self, attempt: ContainerProcess) -> bool:
        """The attempt has exited: stop its ballast, remove its cgroups; whether it was OOM-killed.
        Idempotent (the answer is kept)."""
        with self._lock:
            if attempt.pid in self._settled:
                return self._settled[attempt.pid]
            if attempt is self._attempt:
                self._stop_ballast()
                self._attempt = None
            cgroups = attempt.cgroups
            oom = cgroups is not None and attempt.exit_code == 137 and cgroups.oom_killed()
            if cgroups is not None:
                cgroups.remove()
            self._settled[attempt.pid] = oom
            if oom:
                log.info("%s: OOM-killed by the kernel", self._description)
            return oom


def _mark_for_the_oom_killer(pid: int) -> None:
    """Make the attempt's process the OOM killer's first choice in its cgroup (``oom_score_adj`` 1000; raising
    a score needs no privilege), so the ballast growing beside it is not what the killer picks."""
    try:
        with open(f"/proc/{pid}/oom_score_adj", "w", encoding="ascii") as out:
            out.write("1000")
    except OSError as exc:  # the process may have just ended; the OOM killer then has nothing to choose
        log.debug("oom_score_adj of %d not raised: %s", pid, exc)
