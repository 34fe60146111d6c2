"""One container attempt as a local process group: started, signalled, reaped, logged.

stdout and stderr go to one log file per attempt, as a kubelet keeps them, so
the logs of every attempt (also of restarted containers) stay readable. Exit
codes read as Kubernetes reports them: 128+N after signal N (143 SIGTERM,
137 SIGKILL).
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness import lifecycle
from harness.cluster.embedded.node_agent.cpu_limits import CpuLimits
from harness.cluster.embedded.node_agent.pod_cgroups import AttemptCgroups
from harness.undo import UndoLog

__all__ = ["ContainerProcess", "nice_for_request"]


def nice_for_request(cpu_request: float | None) -> int:
    """A CPU request below one core lowers the process's share as ``cpu.shares`` would:
    1 core or more (or none) → nice 0, 100m → nice 17, 0 → nice 19."""
    if cpu_request is None or cpu_request >= 1:
        return 0
    return round(19 * (1 - max(cpu_request, 0.0)))


class ContainerProcess:
    """A started container attempt. ``exit_code`` is None while it runs."""

    def __init__(
        self,
        *,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: Path,
        logfile: Path,
        undo: UndoLog,
        description: str,
        cpu_limits: CpuLimits,
        cpu_limit: float | None,
        cpu_request: float | None,
        cgroups: AttemptCgroups | None = None,
    ) -> None:
        self.logfile = logfile
        self.started_at = time.time()
        self.finished_at: float | None = None
        self.exit_code: int | None = None
        self._done = threading.Event()
        command: tuple[str, ...] = tuple(argv)
        nice = nice_for_request(cpu_request)
        if nice:
            command = ("nice", "-n", str(nice), *command)  # nice execs: pid and argv stay the container's
        self.cgroups = cgroups  # the attempt's own cgroups (its CPU-limit group is their parent), if any
        if cgroups is not None:
            command = cgroups.wrap(command)
        elif cpu_limit is not None:
            command = cpu_limits.wrap(command, cores=cpu_limit)
        logfile.parent.mkdir(parents=True, exist_ok=True)
        with open(logfile, "ab") as out:
            self._proc = lifecycle.spawn(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                         undo=undo, description=description)
        self.pid = self._proc.pid
        threading.Thread(target=self._wait, name=f"reap-{self.pid}", daemon=True).start()

    def _wait(self) -> None:
        code = lifecycle.finish(self._proc)
        self.exit_code = 128 - code if code < 0 else code
        self.finished_at = time.time()
        self._done.set()

    @property
    def running(self) -> bool:
        return not self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """True once the process has exited and was reaped."""
        return self._done.wait(timeout)

    def kill(self, *, grace_seconds: float) -> int:
        """SIGTERM the group, wait up to ``grace_seconds``, SIGKILL the group; returns the exit code."""
        if grace_seconds > 0 and lifecycle.signal_group(self._proc, signal.SIGTERM):
            self._done.wait(grace_seconds)
        lifecycle.signal_group(self._proc, signal.SIGKILL)
        self._done.wait()
        assert self.exit_code is not None
        return self.exit_code
