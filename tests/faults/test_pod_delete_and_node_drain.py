"""Pod delete and node drain on a process cluster: what they record, and that they heal completely."""

from __future__ import annotations

import pytest

from harness.errors import HarnessError
from harness.faults import node_drain, pod_delete
from harness.history.events import FaultHealed, FaultInjected
from tests.cluster.conftest import py

SLEEPER = py("import time\nwhile True: time.sleep(0.05)")


def test_drain_cordons_evicts_and_heal_uncordons_once(make_cluster, collector):
    cluster = make_cluster()
    cluster.submit_job(_job("work", backoff_limit=3), sink=collector)
    _wait_running(cluster, "work-0")
    node = cluster.list_pods(labels={"job-name": "work"})[0].node
    drained, heal = node_drain.drain_node_of(cluster=cluster, sink=collector, labels={"job-name": "work"},
                                             grace_period_seconds=1, fault_id="node-drain-1")
    assert drained == node
    assert not next(n for n in cluster.nodes() if n.name == node).schedulable
    _wait_running(cluster, "work-1")
    assert cluster.list_pods(labels={"job-name": "work"})[-1].node != node  # rescheduled elsewhere
    (injected,) = collector.of(FaultInjected)
    assert injected.pod == "work-0" and injected.target == node and "evicted work-0" in injected.detail
    heal()
    heal()  # healing twice is harmless
    assert all(n.schedulable for n in cluster.nodes())
    assert len(collector.of(FaultHealed)) == 1


def test_drain_with_nothing_to_hit_is_an_error_not_a_silent_pass(make_cluster, collector):
    cluster = make_cluster()
    with pytest.raises(HarnessError, match="no running pod"):
        node_drain.drain_node_of(cluster=cluster, sink=collector, labels={"job-name": "none"},
                                 grace_period_seconds=1, fault_id="node-drain-1")
    assert all(n.schedulable for n in cluster.nodes())


def test_pod_delete_records_the_kill_and_its_end(make_cluster, collector):
    cluster = make_cluster()
    cluster.submit_job(_job("work", backoff_limit=1), sink=collector)
    _wait_running(cluster, "work-0")
    (ended,) = pod_delete.delete_running_pods(cluster=cluster, sink=collector, labels={"job-name": "work"},
                                              grace_period_seconds=0, fault_id="pod-delete-1")
    assert ended.exit_code == 137
    (injected,) = collector.of(FaultInjected)
    (healed,) = collector.of(FaultHealed)
    assert injected.target == "work-0" and "SIGKILL at once" in injected.detail
    assert "exit code 137" in healed.detail and healed.ts >= injected.ts


def _job(name: str, *, backoff_limit: int):
    from harness.cluster.base import JobSpec

    return JobSpec(name=name, command=SLEEPER, backoff_limit=backoff_limit, backoff_base_seconds=0.05)


def _wait_running(cluster, pod: str) -> None:
    from tests.cluster.conftest import wait_until

    wait_until(lambda: any(p.name == pod and p.phase == "Running" for p in cluster.list_pods()), what=f"{pod} running")
