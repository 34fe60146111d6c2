"""Per-attempt cgroups of process nodes and the resource faults applied to them, without a cluster: an attempt
runs in its own memory and CPU cgroups, a memory-limit fault gets it OOM-killed (and reported so), a CPU-limit
fault sets a CFS quota and taking it back restores it, and every path removes the cgroups and their undo records
(attempt ended, agent stopping with the attempt still running, heal after a SIGKILLed agent)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cluster.embedded.node_agent.container import ContainerProcess
from harness.cluster.embedded.node_agent.cpu_limits import CpuLimits
from harness.cluster.embedded.node_agent.pod_cgroups import AttemptCgroups, PodCgroups
from harness.cluster.embedded.node_agent.resource_faults import ResourceFaults
from harness.cluster.fault_control import CPU_LIMIT_ANNOTATION, MEMORY_LIMIT_ANNOTATION
from harness.undo import UndoLog, heal

HOG = ("python3", "-c", "import time\nheld = bytearray(32 << 20)\nwhile True: time.sleep(0.05)")


@pytest.fixture
def cgroups(undo: UndoLog) -> Iterator[PodCgroups]:
    made = PodCgroups(undo=undo, name=f"ml-chaos-test-{time.monotonic_ns()}")
    if made.problem:
        pytest.skip(f"cgroups are not writable here: {made.problem}")
    yield made
    made.close()


def _start(undo: UndoLog, attempt: AttemptCgroups | None, tmp_path: Path) -> ContainerProcess:
    return ContainerProcess(argv=HOG, env={}, cwd=tmp_path, logfile=tmp_path / "attempt.log", undo=undo,
                            description="test attempt", cpu_limits=CpuLimits(undo=undo, name="unused"),
                            cpu_limit=None, cpu_request=None, cgroups=attempt)


def _wait(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_an_attempt_runs_in_its_own_cgroups_which_go_with_it(cgroups: PodCgroups, undo: UndoLog,
                                                             tmp_path: Path) -> None:
    attempt = cgroups.for_attempt(label="pod p attempt 0", memory_limit=256 << 20, cpu_parent=None)
    assert attempt is not None
    process = _start(undo, attempt, tmp_path)
    _wait(lambda: str(process.pid) in (attempt.memory / "cgroup.procs").read_text().split())
    assert str(process.pid) in (attempt.cpu / "cgroup.procs").read_text().split()
    assert (attempt.memory / "memory.limit_in_bytes").read_text().strip() == str(256 << 20)
    faults = ResourceFaults(undo=undo, description="pod p")
    process.kill(grace_seconds=1)
    assert faults.settle(process) is False  # ended by SIGTERM, not by the OOM killer
    assert not attempt.memory.exists() and not attempt.cpu.exists()
    assert undo.pending() == []
    assert attempt.remove() is True  # idempotent


def test_a_memory_limit_fault_gets_the_attempt_oom_killed_and_reported(cgroups: PodCgroups, undo: UndoLog,
                                                                       tmp_path: Path) -> None:
    attempt = cgroups.for_attempt(label="pod p attempt 0", memory_limit=None, cpu_parent=None)
    process = _start(undo, attempt, tmp_path)
    time.sleep(0.5)  # let it allocate its 32 MiB
    faults = ResourceFaults(undo=undo, description="pod p")
    status = faults.apply({MEMORY_LIMIT_ANNOTATION: "64Mi"}, process)
    assert status.startswith(f"{MEMORY_LIMIT_ANNOTATION}=64Mi: applied: memory limit set to"), status
    assert faults.apply({MEMORY_LIMIT_ANNOTATION: "64Mi"}, process) == ""  # unchanged: nothing to do
    assert process.wait(30), f"not OOM-killed: {(attempt.memory / 'memory.oom_control').read_text()!r}"
    assert process.exit_code == 137
    assert faults.settle(process) is True and faults.settle(process) is True  # the answer is kept
    assert attempt is not None and not attempt.memory.exists()
    _wait(lambda: undo.pending() == [])  # the ballast's process record goes when it is reaped


def test_a_cpu_limit_fault_sets_a_quota_and_taking_it_back_removes_it(cgroups: PodCgroups, undo: UndoLog,
                                                                      tmp_path: Path) -> None:
    attempt = cgroups.for_attempt(label="pod p attempt 0", memory_limit=None, cpu_parent=None)
    assert attempt is not None
    process = _start(undo, attempt, tmp_path)
    faults = ResourceFaults(undo=undo, description="pod p")
    assert "applied: CPU quota set to 10000 us" in faults.apply({CPU_LIMIT_ANNOTATION: "100m"}, process)
    assert (attempt.cpu / "cpu.cfs_quota_us").read_text().strip() == "10000"
    assert "applied: CPU quota removed" in faults.apply({}, process)
    assert (attempt.cpu / "cpu.cfs_quota_us").read_text().strip() == "-1"
    assert faults.apply({}, process) == ""  # taking it back twice is harmless
    process.kill(grace_seconds=0)
    faults.settle(process)
    assert undo.pending() == []


def test_closing_kills_what_still_runs_and_removes_every_cgroup(cgroups: PodCgroups, undo: UndoLog,
                                                                tmp_path: Path) -> None:
    attempt = cgroups.for_attempt(label="pod p attempt 0", memory_limit=None, cpu_parent=None)
    assert attempt is not None
    process = _start(undo, attempt, tmp_path)
    _wait(lambda: str(process.pid) in (attempt.memory / "cgroup.procs").read_text().split())
    assert cgroups.close() == []  # the agent stops with the attempt still running
    assert process.wait(10) and process.exit_code == 137
    assert not attempt.memory.exists() and not attempt.cpu.exists()
    _wait(lambda: undo.pending() == [])
    assert cgroups.close() == []  # idempotent


def test_heal_removes_an_attempts_cgroups_left_by_a_killed_agent(cgroups: PodCgroups, undo: UndoLog,
                                                                 tmp_path: Path) -> None:
    attempt = cgroups.for_attempt(label="pod p attempt 0", memory_limit=None, cpu_parent=None)
    assert attempt is not None
    process = _start(undo, attempt, tmp_path)
    # The agent is SIGKILLed here: its records are all that is left; the process record is newer, so heal
    # stops the process before it removes the cgroups it ran in.
    lines = heal(undo)
    assert any("process group" in line for line in lines) and sum("removed cgroup" in x for x in lines) == 2, lines
    assert process.wait(10)
    assert not attempt.memory.exists() and not attempt.cpu.exists()
    assert heal(undo) == []
