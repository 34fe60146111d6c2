"""CPU limits of process nodes: a capped process gets about its quota of CPU; its cgroup is gone after close or heal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.cluster.embedded.node_agent.cpu_limits import CpuLimits
from harness.undo import UndoLog, heal

BUSY = (sys.executable, "-c", "import time, resource\nt = time.time()\nwhile time.time() - t < 2: pass\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_utime, flush=True)")


def test_a_limited_process_gets_about_its_quota_and_its_cgroup_is_removed(undo: UndoLog) -> None:
    limits = CpuLimits(undo=undo, name="test-cpu")
    command = limits.wrap(BUSY, cores=0.25)
    if limits.problem:
        pytest.skip(f"cgroups are not writable here: {limits.problem}")
    group = Path(command[3]).parent
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    cpu_seconds = float(out.split()[-1])
    assert cpu_seconds < 1.0, f"a 250m process used {cpu_seconds:.2f} s of CPU in 2 s"  # unlimited: about 2 s
    limits.close()
    assert not group.exists()
    assert undo.pending() == []


def test_heal_removes_a_cgroup_left_by_a_killed_harness(undo: UndoLog) -> None:
    limits = CpuLimits(undo=undo, name="test-cpu-heal")
    wrapped = limits.wrap(("true",), cores=0.5)
    if limits.problem:
        pytest.skip(f"cgroups are not writable here: {limits.problem}")
    group = Path(wrapped[3]).parent
    assert group.is_dir()
    assert any("removed cgroup" in line for line in heal(undo))  # as after a SIGKILLed harness
    assert not group.exists()
    assert heal(undo) == []
