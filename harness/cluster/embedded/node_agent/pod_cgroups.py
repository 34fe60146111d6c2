"""Each container attempt's own memory and CPU cgroups (cgroup v1): its memory limit, OOM kills, fault limits.

Every attempt gets a memory cgroup (``resources.limits.memory``, or unlimited)
and a CPU cgroup (a child of its CPU-limit group when it has one, so that
limit still holds), created and recorded for ``heal`` *before* the process
starts: the process record is then newer, so ``heal`` stops the process before
it removes the empty cgroups. Charges stay with the cgroup a page was first
charged to (cgroup v1 on current kernels cannot move them), which is why the
process lives in its own memory cgroup from its first instruction on.

The fault-control channel changes a running attempt's limits in place:
:meth:`AttemptCgroups.set_memory_limit` lowers ``memory.limit_in_bytes``
(the kernel refuses a limit below what it cannot reclaim with EBUSY; the
tightest limit it accepts is the current usage, and the attempt's next growth
then meets the kernel's OOM killer) and :meth:`AttemptCgroups.set_cpu_limit`
sets a CFS quota. ``None`` restores the pod's own limit. :meth:`oom_killed`
says whether the kernel's OOM killer acted in the attempt's memory cgroup, so
its end is reported as a kubelet does (exit 137, ``OOMKilled``).

Where cgroup v1 memory and cpu controllers are not writable, ``problem`` says
why and attempts run without cgroups of their own.

Every attempt's cgroups are removed, and their undo records cleared, on every
path: the pod worker removes them when the attempt has ended (exited, restarted,
deleted, or failed to start), and :meth:`PodCgroups.close` (the node agent
stopping, also for a spot preemption) kills what still runs in any cgroup left
and removes it. Only a SIGKILLed agent leaves them, to ``heal``.
"""

from __future__ import annotations

import errno
import itertools
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from harness.undo import UndoLog

__all__ = ["AttemptCgroups", "PodCgroups", "MEMORY_ROOT", "CPU_ROOT"]

MEMORY_ROOT = Path("/sys/fs/cgroup/memory")
CPU_ROOT = Path("/sys/fs/cgroup/cpu")
PERIOD_US = 100_000
_UNLIMITED = "-1"
_EBUSY_RETRIES = 5
_REMOVE_SECONDS = 5.0  # how long close() waits for killed processes to leave a cgroup


class AttemptCgroups:
    """The two cgroups of one container attempt. Thread-safe; :meth:`remove` is idempotent."""

    def __init__(self, *, undo: UndoLog, memory: Path, cpu: Path, records: tuple[str, ...],
                 memory_limit: int | None, on_removed: Callable[[AttemptCgroups], None] | None = None) -> None:
        self.memory = memory
        self.cpu = cpu
        self._undo = undo
        self._records = records
        self._own_memory_limit = memory_limit
        self._on_removed = on_removed  # the maker forgets the attempt once its cgroups are gone
        self._lock = threading.Lock()

    def wrap(self, command: tuple[str, ...]) -> tuple[str, ...]:
        """``command`` started inside both cgroups (a shell joins them with its own pid, then execs)."""
        script = 'echo $$ > "$0" && echo $$ > "$1" && shift && exec "$@"'
        return ("sh", "-c", script, str(self.memory / "cgroup.procs"), str(self.cpu / "cgroup.procs"), *command)

    def set_memory_limit(self, limit: int | None) -> str:
        """Cap the attempt's memory at ``limit`` bytes (None: the pod's own limit); says what was set.

        When the kernel cannot reclaim down to ``limit`` it refuses (EBUSY); the limit is then set to the
        attempt's current usage, the tightest it accepts. OSError when neither can be written."""
        with self._lock:
            if limit is None:
                own = self._own_memory_limit
                _write(self.memory / "memory.limit_in_bytes", str(own) if own is not None else _UNLIMITED)
                return "memory limit restored to " + (f"{own} bytes" if own is not None else "unlimited")
            try:
                _write(self.memory / "memory.limit_in_bytes", str(limit))
                return f"memory limit set to {limit} bytes"
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    raise
            for _ in range(_EBUSY_RETRIES):  # usage moves while the process runs: aim at it again
                usage = int(_read(self.memory / "memory.usage_in_bytes") or 0)
                try:
                    _write(self.memory / "memory.limit_in_bytes", str(usage))
                    return (f"memory limit set to the current usage {usage} bytes (the kernel could not reclaim "
                            f"down to {limit}): the next growth is OOM-killed")
                except OSError as exc:
                    if exc.errno != errno.EBUSY:
                        raise
            raise OSError(errno.EBUSY, f"the kernel refused every memory limit near the usage of {self.memory}")

    def set_cpu_limit(self, cores: float | None) -> str:
        """Cap the attempt at ``cores`` of CPU with a CFS quota (None: no cap beyond the pod's own)."""
        with self._lock:
            if cores is None:
                _write(self.cpu / "cpu.cfs_quota_us", _UNLIMITED)
                return "CPU quota removed"
            quota = max(1000, round(cores * PERIOD_US))  # the kernel's minimum quota is 1 ms
            _write(self.cpu / "cpu.cfs_period_us", str(PERIOD_US))
            _write(self.cpu / "cpu.cfs_quota_us", str(quota))
            return f"CPU quota set to {quota} us per {PERIOD_US} us ({quota / PERIOD_US:g} cores)"

    def oom_killed(self) -> bool:
        """Whether the kernel's OOM killer killed a process of this attempt's memory cgroup."""
        control = _read(self.memory / "memory.oom_control")
        for line in control.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value or 0) > 0
        # Kernels before 4.13 do not count kills: a limit that was hit is the best evidence there is.
        return int(_read(self.memory / "memory.failcnt") or 0) > 0

    def remove(self) -> bool:
        """Remove both cgroups once their processes are gone; a cgroup still busy is left (True: both gone).

        Idempotent. The CPU cgroup goes first: it is the child of a CPU-limit group that is removed later."""
        with self._lock:
            gone = True
            for directory, record in zip((self.cpu, self.memory), self._records, strict=True):
                try:
                    directory.rmdir()
                except FileNotFoundError:
                    pass
                except OSError:
                    gone = False
                    continue
                self._undo.remove(record)
        if gone and self._on_removed is not None:
            self._on_removed(self)
        return gone

    def kill_and_remove(self, *, timeout: float = _REMOVE_SECONDS) -> bool:
        """SIGKILL whatever still runs in the cgroups, then remove them (retrying while the kernel lets the
        killed processes go); True once both are gone."""
        deadline = time.monotonic() + timeout
        while True:
            for directory in (self.memory, self.cpu):
                for pid in _read(directory / "cgroup.procs").split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            if self.remove() or time.monotonic() > deadline:
                return not (self.memory.exists() or self.cpu.exists())
            time.sleep(0.05)


class PodCgroups:
    """Makes the attempts' cgroups on one node; ``problem`` says why it makes none, when it does not."""

    def __init__(self, *, undo: UndoLog, name: str) -> None:
        self._undo = undo
        self._name = name  # unique per node agent, e.g. ml-chaos-<pid>-<node>
        self._serial = itertools.count()
        self._lock = threading.Lock()
        self._live: dict[int, AttemptCgroups] = {}  # by id(): attempts' cgroups not removed yet
        self.problem = ""
        if not (MEMORY_ROOT / "memory.limit_in_bytes").exists() or not (CPU_ROOT / "cpu.cfs_quota_us").exists():
            self.problem = "no cgroup v1 memory and cpu controllers"

    def for_attempt(self, *, label: str, memory_limit: int | None, cpu_parent: Path | None) -> AttemptCgroups | None:
        """New cgroups for one attempt (``label`` names it in the undo log); None when unavailable.

        ``cpu_parent``: the attempt's CPU-limit cgroup, under which its own CPU cgroup is made."""
        with self._lock:
            if self.problem:
                return None
            leaf = f"{self._name}-a{next(self._serial)}"
        made: list[tuple[Path, str]] = []
        try:
            for directory in (MEMORY_ROOT / leaf, (cpu_parent or CPU_ROOT) / leaf):
                record = self._undo.add(kind="cgroup", path=directory, description=f"cgroup of {label}: {directory}")
                made.append((directory, record.id))
                directory.mkdir()
            if memory_limit is not None:
                _write(made[0][0] / "memory.limit_in_bytes", str(memory_limit))
        except OSError as exc:
            for directory, record_id in reversed(made):
                try:
                    directory.rmdir()
                except OSError:
                    pass
                self._undo.remove(record_id)
            with self._lock:
                self.problem = f"cannot create cgroups for pods: {exc.strerror or exc}"
            return None
        cgroups = AttemptCgroups(undo=self._undo, memory=made[0][0], cpu=made[1][0],
                                 records=(made[1][1], made[0][1]), memory_limit=memory_limit,
                                 on_removed=self._forget)
        with self._lock:
            self._live[id(cgroups)] = cgroups
        return cgroups

    def _forget(self, cgroups: AttemptCgroups) -> None:
        with self._lock:
            self._live.pop(id(cgroups), None)

    def close(self) -> list[str]:
        """Kill what still runs in any attempt's cgroups and remove them all (the node agent is stopping);
        returns the cgroups that could not be removed (their records stay, for ``heal``). Idempotent."""
        with self._lock:
            left = list(self._live.values())
        stuck: list[str] = []
        for cgroups in left:
            if not cgroups.kill_and_remove():
                stuck.append(str(cgroups.memory))
        return stuck


def _write(path: Path, value: str) -> None:
    with open(path, "w", encoding="ascii") as out:
        out.write(value)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
