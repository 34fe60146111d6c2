"""CPU limits for pods, as ``resources.limits.cpu`` sets them: a CFS quota in a cgroup.

The harness makes one cgroup per limit under the cpu controller (cgroup v1
``/sys/fs/cgroup/cpu`` or v2 ``/sys/fs/cgroup``), records it for ``heal`` before
creating it, and removes it on close. A pod joins its cgroup before its command
starts (a shell writes its own pid, then execs the command, so the pid stays
the pod's). Where cgroups cannot be written (not root, read-only), limits are
not applied and ``available`` says so.
"""

from __future__ import annotations

import threading
from pathlib import Path

from harness.undo import UndoLog

PERIOD_US = 100_000
_V1 = Path("/sys/fs/cgroup/cpu")
_V2 = Path("/sys/fs/cgroup")


class CpuLimits:
    """Creates and removes the cgroups that cap pods' CPU."""

    def __init__(self, *, undo: UndoLog, name: str) -> None:
        self._undo = undo
        self._name = name  # unique per cluster, e.g. ml-chaos-<pid>-<n>
        self._groups: dict[int, tuple[Path, str]] = {}  # millicores -> (dir, undo record id)
        self._lock = threading.Lock()
        self.problem = ""  # why limits are not applied, when they are not

    def wrap(self, command: tuple[str, ...], *, cores: float) -> tuple[str, ...]:
        """``command`` started inside the cgroup capping it at ``cores``; unchanged when unavailable."""
        group = self._group(max(1, round(cores * 1000)))
        if group is None:
            return command
        return ("sh", "-c", 'echo $$ > "$0" && exec "$@"', str(group / "cgroup.procs"), *command)

    def group(self, *, cores: float) -> Path | None:
        """The cgroup capping pods at ``cores`` (made on first use); None when unavailable."""
        return self._group(max(1, round(cores * 1000)))

    def close(self) -> None:
        """Remove the cgroups (their pods must have exited). Idempotent."""
        with self._lock:
            for directory, record in self._groups.values():
                try:
                    directory.rmdir()
                except FileNotFoundError:
                    pass
                except OSError:
                    continue  # still has a process: heal removes it later
                self._undo.remove(record)
            self._groups.clear()

    def _group(self, millicores: int) -> Path | None:
        with self._lock:
            if millicores in self._groups:
                return self._groups[millicores][0]
            if self.problem:
                return None
            v1 = (_V1 / "cpu.cfs_quota_us").exists()
            root = _V1 if v1 else _V2
            if not v1 and "cpu" not in _read(_V2 / "cgroup.controllers"):
                self.problem = "no writable cgroup cpu controller"
                return None
            directory = root / f"{self._name}-{millicores}m"
            record = self._undo.add(kind="cgroup", path=directory, description=f"CPU limit cgroup {directory}")
            try:
                directory.mkdir(exist_ok=True)
                quota = millicores * PERIOD_US // 1000
                if v1:
                    (directory / "cpu.cfs_period_us").write_text(str(PERIOD_US))
                    (directory / "cpu.cfs_quota_us").write_text(str(quota))
                else:
                    (directory / "cpu.max").write_text(f"{quota} {PERIOD_US}")
            except OSError as exc:
                self.problem = f"cannot create a cgroup under {root}: {exc.strerror or exc}"
                try:
                    directory.rmdir()
                except OSError:
                    pass
                self._undo.remove(record.id)
                return None
            self._groups[millicores] = (directory, record.id)
            return directory


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""

