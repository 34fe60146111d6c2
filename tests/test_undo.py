"""Undo records, heal, and the process lifecycle helpers."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import lifecycle
from harness import undo as undo_mod
from harness.errors import HarnessError
from harness.undo import UndoLog, default_state_dir, group_members, heal, process_start_ticks

SLEEPER = [sys.executable, "-c", "import subprocess, sys, time; "
           "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); time.sleep(600)"]


@pytest.fixture
def log(tmp_path: Path) -> UndoLog:
    return UndoLog(tmp_path / "undo")


def spawn_sleeper(log: UndoLog, argv: list[str] = SLEEPER) -> int:
    proc = lifecycle.spawn(argv, env=None, cwd=None, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           undo=log, description="sleeper")
    pid = proc.pid
    deadline = time.monotonic() + 20
    while len(group_members(pid)) < (2 if argv is SLEEPER else 1):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return pid


def test_default_state_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HARNESS_STATE_DIR", str(tmp_path))
    assert default_state_dir() == tmp_path
    monkeypatch.delenv("HARNESS_STATE_DIR")
    assert default_state_dir() == Path.home() / ".local/state/ml-chaos-harness"


def test_records_persist_and_remove(log: UndoLog, tmp_path: Path) -> None:
    a = log.add_tempdir(path=tmp_path / "x", description="a dir")
    b = log.add(kind="process", description="p", pid=123, start_ticks=456)
    again = UndoLog(log.directory).pending()  # as a later harness run sees them
    assert again == [a, b]
    assert not list(log.directory.glob(".*.tmp"))
    log.remove(a.id)
    log.remove(a.id)  # idempotent
    assert log.pending() == [b]


def test_heal_kills_leftover_process_group_and_removes_tempdir(log: UndoLog, tmp_path: Path) -> None:
    pid = spawn_sleeper(log)
    members = group_members(pid)
    assert len(members) == 2  # the leader and the child it forked
    d = tmp_path / "scratch"
    log.add_tempdir(path=d, description="scratch")
    d.mkdir()
    (d / "f").write_text("x")
    gc.collect()  # the Popen is long dropped by spawn_sleeper's caller
    lines = heal(log)
    assert len(lines) == 2 and any("SIGTERM" in line for line in lines)
    assert group_members(pid) == []
    assert all(process_start_ticks(m) is None for m in members)
    assert not d.exists()
    assert log.pending() == []
    assert heal(log) == []  # healing twice is harmless


def test_heal_sigkills_a_group_ignoring_sigterm(log: UndoLog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(undo_mod, "HEAL_GRACE_SECONDS", 0.3)
    ignores_term = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
    pid = spawn_sleeper(log, [sys.executable, "-c", ignores_term])
    time.sleep(0.3)  # let it install the handler
    assert "SIGKILL" in heal(log)[0]
    assert group_members(pid) == []


def test_heal_never_signals_a_reused_pid(log: UndoLog) -> None:
    proc = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        ticks = process_start_ticks(proc.pid)
        assert ticks is not None
        # A record for an older process that had this pid: its start time differs.
        log.add(kind="process", description="old", pid=proc.pid, start_ticks=ticks - 1)
        assert "already gone" in heal(log)[0]
        assert proc.poll() is None
        assert log.pending() == []
    finally:
        proc.kill()
        proc.wait()


def test_heal_of_vanished_things_is_fine(log: UndoLog, tmp_path: Path) -> None:
    proc = subprocess.Popen(["true"], start_new_session=True)
    proc.wait()
    log.add(kind="process", description="exited", pid=proc.pid, start_ticks=1)
    log.add_tempdir(path=tmp_path / "never-made", description="never made")
    assert all("already gone" in line for line in heal(log))
    assert log.pending() == []


def test_unknown_kind_stays_pending(log: UndoLog) -> None:
    log.add(kind="netem", description="a throttle")
    with pytest.raises(HarnessError, match="unknown kind 'netem'"):
        heal(log)
    assert len(log.pending()) == 1
    undo_mod.register_kind("netem", lambda r: f"unthrottled {r.description}")
    try:
        assert heal(log) == ["unthrottled a throttle"]
    finally:
        del undo_mod._HANDLERS["netem"]


def test_stop_removes_record_and_kills_group(log: UndoLog) -> None:
    proc = lifecycle.spawn(SLEEPER, env=None, cwd=None, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           undo=log, description="s")
    assert [r.pid for r in log.pending()] == [proc.pid]
    assert log.pending()[0].start_ticks == process_start_ticks(proc.pid)
    time.sleep(0.3)
    assert lifecycle.stop(proc, grace=5) == -signal.SIGTERM
    assert lifecycle.stop(proc, grace=5) == -signal.SIGTERM  # idempotent
    assert group_members(proc.pid) == []
    assert log.pending() == []


def test_free_port_is_bindable_on_loopback() -> None:
    import socket

    port = lifecycle.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_signal_handlers_raise_interrupted_once() -> None:
    previous = lifecycle.install_signal_handlers()
    try:
        with pytest.raises(lifecycle.Interrupted, match="SIGTERM"):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        os.kill(os.getpid(), signal.SIGHUP)  # a second signal must not interrupt cleanup
        time.sleep(0.05)
    finally:
        lifecycle.restore_signal_handlers(previous)
    assert signal.getsignal(signal.SIGTERM) == previous[signal.SIGTERM]
    assert issubclass(lifecycle.Interrupted, KeyboardInterrupt)


def test_heal_also_undoes_records_created_while_it_runs(tmp_path):
    """A process heal has not reached yet (a node agent) may create a record (a restarted container):
    heal passes again until nothing new appears."""
    from harness.undo import register_kind

    log = UndoLog(tmp_path / "undo")
    late = tmp_path / "late"

    def spawner(record):
        late.mkdir()
        log.add_tempdir(path=late, description="made while healing")
        return "undid the spawner"

    register_kind("test-spawner", spawner)
    log.add(kind="test-spawner", description="spawns a record when undone")
    done = heal(log)
    assert done[0] == "undid the spawner" and any("made while healing" in line for line in done)
    assert not late.exists() and log.pending() == []
