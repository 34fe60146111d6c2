"""Undo records: what the harness must clean up if it dies (krkn-style rollback).

Every resource the harness creates is written down here *before* it exists (or,
for a process, right after the spawn returns its pid), one small JSON file per
resource, written atomically. A normal run removes each record when it removes
the resource; a run killed with SIGKILL leaves its records behind and
:func:`heal` undoes them later (``harness heal``, or the next run).

A process record carries the pid *and* its start time (``/proc/<pid>/stat``
field 22, in clock ticks since boot), so a pid the kernel has since reused for
an unrelated process is never signalled.

New kinds (a cordon on a real cluster, a network throttle) plug in with
:func:`register_kind`: a handler that undoes one record and returns a line
saying what it did.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.errors import HarnessError

__all__ = [
    "UndoRecord",
    "UndoLog",
    "default_state_dir",
    "default_undo_log",
    "heal",
    "register_kind",
    "process_start_ticks",
    "group_members",
]

HEAL_PASSES = 5
HEAL_GRACE_SECONDS = 3.0
"""How long :func:`heal` waits after SIGTERM before it SIGKILLs a process group."""


@dataclass(frozen=True, kw_only=True)
class UndoRecord:
    """One resource to undo. ``kind`` selects the handler (``"process"``, ``"tempdir"``, ...).

    ``pid``/``start_ticks`` are set for processes (the pid leads its own process
    group), ``path`` for temp dirs; ``extra`` holds what later kinds need.
    """

    id: str
    kind: str
    description: str
    created: float
    pid: int = 0
    start_ticks: int = 0
    path: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)


def default_state_dir() -> Path:
    """``$HARNESS_STATE_DIR``, else ``~/.local/state/ml-chaos-harness``."""
    env = os.environ.get("HARNESS_STATE_DIR")
    if env:
        return Path(env)
    return Path.home() / ".local" / "state" / "ml-chaos-harness"


def default_undo_log() -> UndoLog:
    """The undo log in ``default_state_dir()/undo``."""
    return UndoLog(default_state_dir() / "undo")


def process_start_ticks(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (``/proc/<pid>/stat`` field 22).

    ``None`` when no such process exists (or it is a zombie, which is as good as gone).
    """
    stat = _read_stat(pid)
    if stat is None or stat[0] == "Z":
        return None
    return int(stat[19])


def _read_stat(pid: int) -> list[str] | None:
    """Fields 3.. of ``/proc/<pid>/stat`` (state first), or None if the pid is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) is in parentheses and may itself contain ") ".
    return raw[raw.rfind(")") + 2 :].split()


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    members: list[int] = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        stat = _read_stat(int(entry.name))
        # stat[0] is the state, stat[2] the process group (field 5).
        if stat is not None and stat[0] != "Z" and int(stat[2]) == pgid:
            members.append(int(entry.name))
    return members


class UndoLog:
    """A directory of undo records, one ``<id>.json`` each. Safe across threads and processes."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()

    def add(
        self,
        *,
        kind: str,
        description: str,
        pid: int = 0,
        start_ticks: int = 0,
        path: str | Path = "",
        extra: Mapping[str, str] | None = None,
    ) -> UndoRecord:
        """Write a record durably (tmp + fsync + rename) and return it."""
        record = UndoRecord(
            id=f"{int(time.time() * 1000):013d}-{uuid.uuid4().hex[:12]}",
            kind=kind,
            description=description,
            created=time.time(),
            pid=pid,
            start_ticks=start_ticks,
            path=str(path),
            extra=dict(extra or {}),
        )
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            final = self.directory / f"{record.id}.json"
            tmp = self.directory / f".{record.id}.tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(asdict(record), f, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        return record

    def add_process(self, *, pid: int, description: str) -> UndoRecord:
        """Record a process group led by ``pid`` (call right after spawning it)."""
        ticks = process_start_ticks(pid)
        return self.add(kind="process", description=description, pid=pid, start_ticks=ticks or 0)

    def add_tempdir(self, *, path: Path | str, description: str) -> UndoRecord:
        """Record a directory to remove (call before creating it)."""
        return self.add(kind="tempdir", description=description, path=path)

    def remove(self, record_id: str) -> None:
        """Forget a record; a record already gone is fine."""
        try:
            (self.directory / f"{record_id}.json").unlink()
        except FileNotFoundError:
            pass

    def pending(self) -> list[UndoRecord]:
        """All records, oldest first. Unreadable files (a torn write cannot happen,
        but a hand-edited one can) raise HarnessError naming the file."""
        if not self.directory.is_dir():
            return []
        records: list[UndoRecord] = []
        for file in sorted(self.directory.glob("*.json")):
            try:
                data = json.loads(file.read_text(encoding="utf-8"))
                records.append(UndoRecord(**data))
            except FileNotFoundError:
                continue  # removed concurrently
            except (ValueError, TypeError) as exc:
                raise HarnessError(
                    f"undo record {file} is unreadable ({exc}); inspect it, undo it by hand and delete the file"
                ) from exc
        records.sort(key=lambda r: (r.created, r.id))
        return records


# --- handlers ----------------------------------------------------------------

UndoHandler = Callable[[UndoRecord], str]
_HANDLERS: dict[str, UndoHandler] = {}


def register_kind(kind: str, handler: UndoHandler) -> None:
    """Teach :func:`heal` a new kind. ``handler`` must be idempotent: undoing a
    resource that is already gone returns normally."""
    _HANDLERS[kind] = handler


def _heal_process(record: UndoRecord) -> str:
    pgid = record.pid
    ticks = process_start_ticks(pgid)
    if ticks is not None and record.start_ticks and ticks != record.start_ticks:
        # The pid now names another process: the recorded one is gone. While any
        # member of the old group lived, the kernel would not have reused the pid.
        return f"process {pgid} ({record.description}) already gone (pid reused)"
    if ticks is None and not group_members(pgid):
        _reap(pgid)
        return f"process {pgid} ({record.description}) already gone"
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + HEAL_GRACE_SECONDS
    while time.monotonic() < deadline:
        _reap(pgid)
        if not group_members(pgid):
            return f"stopped process group {pgid} ({record.description}) with SIGTERM"
        time.sleep(0.05)
    _signal_group(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while group_members(pgid) and time.monotonic() < deadline:
        _reap(pgid)
        time.sleep(0.02)
    _reap(pgid)
    if group_members(pgid):
        raise HarnessError(f"process group {pgid} ({record.description}) survived SIGKILL; check `ps -g {pgid}`")
    return f"killed process group {pgid} ({record.description}) with SIGKILL"


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _reap(pid: int) -> None:
    """Reap ``pid`` if it is our own exited child (heal in the same process as the spawn)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _heal_tempdir(record: UndoRecord) -> str:
    path = Path(record.path)
    if not path.exists():
        return f"temp dir {path} ({record.description}) already gone"
    shutil.rmtree(path)
    return f"removed temp dir {path} ({record.description})"


def _heal_cgroup(record: UndoRecord) -> str:
    """Remove a CPU-limit cgroup; its processes were stopped by their own (newer) records."""
    try:
        Path(record.path).rmdir()
    except FileNotFoundError:
        return f"cgroup {record.path} already gone"
    return f"removed cgroup {record.path}"


register_kind("process", _heal_process)
register_kind("cgroup", _heal_cgroup)
register_kind("tempdir", _heal_tempdir)


def heal(log: UndoLog) -> list[str]:
    """Undo every pending record, newest first, and remove each one undone.

    Returns one line per record saying what was done. Idempotent: healing twice,
    or healing resources that vanished on their own, is harmless. Records that
    could not be undone stay pending; HarnessError lists them after all others
    have been tried.

    A process still alive while heal runs may create records of its own (a node
    agent restarts a container heal just killed), so heal passes over the log
    again until a pass finds nothing new; by then what created them is gone.
    """
    done: list[str] = []
    failures: list[str] = []
    tried: set[str] = set()
    for _ in range(HEAL_PASSES):
        records = [r for r in reversed(log.pending()) if r.id not in tried]
        if not records:
            break
        for record in records:
            tried.add(record.id)
            handler = _HANDLERS.get(record.kind)
            if handler is None:
                failures.append(f"{record.id}: unknown kind {record.kind!r}")
                continue
            try:
                done.append(handler(record))
            except (OSError, HarnessError) as exc:
                failures.append(f"{record.id} ({record.description}): {exc}")
                continue
            log.remove(record.id)
    if failures:
        raise HarnessError(
            "could not undo " + "; ".join(failures) + f"; fix these by hand and delete their files in {log.directory}"
        )
    return done
