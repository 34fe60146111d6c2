"""CPU limits: a capped pod gets about its quota of CPU; its cgroup is gone after close or heal."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.cluster.base import JobSpec
from harness.history.events import PodExited
from harness.undo import heal


def py(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


BUSY = py("import time, resource\nt = time.time()\nwhile time.time() - t < 2: pass\n"
          "print(resource.getrusage(resource.RUSAGE_SELF).ru_utime, flush=True)")


def test_a_limited_pod_gets_about_its_quota_and_its_cgroup_is_removed(make_cluster, collector, tmp_path):
    cluster = make_cluster()
    probe = cluster.cpu_limits.wrap(("true",), cores=0.25)
    if cluster.cpu_limits.problem:
        pytest.skip(f"cgroups are not writable here: {cluster.cpu_limits.problem}")
    group = probe[3].rsplit("/", 1)[0]
    cluster.submit_job(JobSpec(name="capped", command=BUSY, cpu_limit=0.25, backoff_limit=0), sink=collector)
    cluster.wait_job("capped", timeout=30)
    log = (tmp_path / "cluster0" / "pods" / "capped-0" / "stdout.log").read_text()
    cpu_seconds = float(log.split()[-1])
    assert cpu_seconds < 1.0, f"a 250m pod used {cpu_seconds:.2f} s of CPU in 2 s"  # unlimited: about 2 s
    assert collector.of(PodExited)[0].exit_code == 0
    cluster.close()
    assert not Path(group).exists()


def test_heal_removes_a_cgroup_left_by_a_killed_harness(make_cluster, undo):
    cluster = make_cluster()
    wrapped = cluster.cpu_limits.wrap(("true",), cores=0.5)
    if cluster.cpu_limits.problem:
        pytest.skip(f"cgroups are not writable here: {cluster.cpu_limits.problem}")
    group = Path(wrapped[3]).parent
    assert group.is_dir()
    assert any("removed cgroup" in line for line in heal(undo))  # as after a SIGKILLed harness
    assert not group.exists()
    assert heal(undo) == []
