"""The contract every cluster backend keeps, checked against a real Kubernetes control plane.

Job retries, backoff, scheduling, cordon, eviction, PodDisruptionBudgets and
ResourceQuota are Kubernetes' own here: these tests show that the backend
drives them and reports what happened, as history events and pod states.
"""

from __future__ import annotations

import json

import pytest
from kubernetes import client, config, dynamic

from harness.cluster.base import PRIORITY_BACKFILL, PRIORITY_DAILY, DrainBlocked, JobSpec
from harness.cluster.kube.backend import KubernetesCluster
from harness.history.events import JobFinished, PodExited, PodStarted, TrainStep, UnknownEvent
from tests.cluster.conftest import Collector, py, wait_until

SLEEPER = py("import signal, sys, time\n"
             "signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))\n"
             "print('up', flush=True)\n"
             "time.sleep(600)")


def _running(cluster: KubernetesCluster, job: str) -> str:
    """Wait until the Job's pod is Running; its name."""
    found: list[str] = []

    def running() -> bool:
        pods = [p for p in cluster.list_pods(labels={"job-name": job}) if p.phase == "Running" and not p.deleting]
        found[:] = [p.name for p in pods]
        return bool(pods)

    wait_until(running, timeout=60, what=f"a Running pod of {job}")
    return found[0]


def _core(cluster: KubernetesCluster, embedded: object) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(config_file=str(embedded.kubeconfig)))  # type: ignore[attr-defined]


def test_a_job_runs_to_completion_and_its_log_events_reach_the_sink(cluster: KubernetesCluster,
                                                                   collector: Collector) -> None:
    line = json.dumps({"event": "train_step", "run_id": "r", "step": 3, "loss": 0.5})
    cluster.submit_job(JobSpec(name="hello", command=py(f"print({line!r})\nprint('not json')"),
                               labels={"step": "train"}), sink=collector)
    status = cluster.wait_job("hello", timeout=60)
    assert status.succeeded and status.finished
    kinds = [type(e).__name__ for e in collector.events]
    assert kinds == ["PodStarted", "TrainStep", "PodExited", "JobFinished"], kinds
    step = collector.of(TrainStep)[0]
    started = collector.of(PodStarted)[0]
    assert isinstance(step, TrainStep) and step.step == 3 and step.pod == started.pod and step.attempt == 0
    exited = collector.of(PodExited)[0]
    assert isinstance(exited, PodExited) and exited.exit_code == 0 and exited.reason == "Completed"
    assert exited.node in ("node-a", "node-b")


def test_pods_are_listed_by_labels_oldest_first(cluster: KubernetesCluster, collector: Collector) -> None:
    for name, step in (("first", "a"), ("second", "b"), ("third", "a")):
        cluster.submit_job(JobSpec(name=name, command=py("pass"), labels={"step": step}), sink=collector)
        cluster.wait_job(name, timeout=60)
    assert [p.job for p in cluster.list_pods(labels={"step": "a"})] == ["first", "third"]
    assert [p.job for p in cluster.list_pods()] == ["first", "second", "third"]
    assert all(p.phase == "Succeeded" for p in cluster.list_pods())


def test_a_graceful_delete_ends_with_143_and_a_forced_one_with_137(cluster: KubernetesCluster,
                                                                  collector: Collector) -> None:
    cluster.submit_job(JobSpec(name="victim", command=SLEEPER, backoff_limit=3), sink=collector)
    first = _running(cluster, "victim")
    ended = cluster.delete_pod(first, grace_period_seconds=30)
    assert (ended.exit_code, ended.gone) == (143, True)
    # Kubernetes replaces a deleted pod at once (no backoff): the Job's next pod runs.
    second = _running(cluster, "victim")
    assert second != first
    ended = cluster.delete_pod(second, grace_period_seconds=0)
    assert ended.exit_code == 137
    codes = [(e.pod, e.exit_code) for e in collector.of(PodExited)]
    assert (first, 143) in codes and (second, 137) in codes
    cluster.delete_job("victim")


def test_a_failed_pod_is_retried_and_the_job_fails_past_its_backoff_limit(cluster: KubernetesCluster,
                                                                         collector: Collector) -> None:
    """``restartPolicy: Never``: the Job controller replaces a failed pod with a new one, the first time at
    once, then after its backoff (10 s, doubling), until ``backoffLimit`` failures."""
    cluster.submit_job(JobSpec(name="doomed", command=py("raise SystemExit(3)"), backoff_limit=2,
                               restart_policy="Never"), sink=collector)
    status = cluster.wait_job("doomed", timeout=120)
    assert status.finished and not status.succeeded and status.failed == 3
    exits = collector.of(PodExited)
    assert [(e.exit_code, e.attempt) for e in exits] == [(3, 0), (3, 1), (3, 2)], exits  # type: ignore[attr-defined]
    assert len({e.pod for e in exits}) == 3, "a new pod for each attempt"
    assert exits[2].ts - exits[1].ts >= 5, "the Job controller waited its backoff before the third pod"
    finished = collector.of(JobFinished)
    assert len(finished) == 1 and not finished[0].succeeded  # type: ignore[attr-defined]


def test_restart_in_place_keeps_every_attempts_log(cluster: KubernetesCluster, collector: Collector,
                                                   embedded: object) -> None:
    """OnFailure: the kubelet restarts the container in the same pod; each attempt's log is read through the API."""
    code = ("import json, os, pathlib, sys\n"
            "marker = pathlib.Path('/tmp') / ('attempted-' + os.environ['POD_NAME'])\n"
            "first = not marker.exists()\nmarker.touch()\n"
            "print(json.dumps({'event': 'train_step', 'run_id': 'r', 'step': 1 if first else 2, 'loss': 0.0}))\n"
            "sys.exit(1 if first else 0)")
    cluster.submit_job(JobSpec(name="flaky", command=py(code), restart_policy="OnFailure"), sink=collector)
    assert cluster.wait_job("flaky", timeout=90).succeeded
    steps = [(e.pod, e.attempt, e.step) for e in collector.of(TrainStep)]  # type: ignore[attr-defined]
    assert len(steps) == 2 and steps[0][0] == steps[1][0], "restarted in place: one pod, two attempts"
    assert [(a, s) for _, a, s in steps] == [(0, 1), (1, 2)]
    pod = steps[0][0]
    previous = _core(cluster, embedded).read_namespaced_pod_log(pod, cluster.namespace, previous=True)
    assert '"step": 1' in previous
    assert cluster.list_pods(labels={"job-name": "flaky"})[0].restart_count == 1


def test_a_cordoned_cluster_leaves_new_pods_pending(cluster: KubernetesCluster, collector: Collector,
                                                    embedded: object) -> None:
    for node in embedded.node_names:  # type: ignore[attr-defined]
        cluster.cordon(node)
    cluster.submit_job(JobSpec(name="waiting", command=py("pass")), sink=collector)
    wait_until(lambda: bool(cluster.list_pods(labels={"job-name": "waiting"})), what="the Job's pod")
    pod = cluster.list_pods(labels={"job-name": "waiting"})[0]
    assert pod.phase == "Pending" and pod.node == ""
    assert not any(n.schedulable for n in cluster.nodes())
    cluster.uncordon(embedded.node_names[0])  # type: ignore[attr-defined]
    assert cluster.wait_job("waiting", timeout=60).succeeded


def test_drain_evicts_and_the_replacement_runs_on_the_other_node(cluster: KubernetesCluster,
                                                                 collector: Collector) -> None:
    cluster.submit_job(JobSpec(name="mover", command=SLEEPER, backoff_limit=3), sink=collector)
    first = _running(cluster, "mover")
    node = next(p.node for p in cluster.list_pods() if p.name == first)
    evicted = cluster.drain(node, grace_period_seconds=10)
    assert [(p.name, p.exit_code) for p in evicted] == [(first, 143)]
    second = _running(cluster, "mover")
    replacement = next(p for p in cluster.list_pods() if p.name == second)
    assert replacement.node != node
    assert not next(n for n in cluster.nodes() if n.name == node).schedulable
    cluster.uncordon(node)
    cluster.delete_job("mover")


def test_a_pod_disruption_budget_blocks_the_drain_and_it_says_so(cluster: KubernetesCluster,
                                                                 collector: Collector, embedded: object) -> None:
    cluster.submit_job(JobSpec(name="guarded", command=SLEEPER, labels={"app": "guarded"}), sink=collector)
    pod = _running(cluster, "guarded")
    node = next(p.node for p in cluster.list_pods() if p.name == pod)
    api = dynamic.DynamicClient(config.new_client_from_config(config_file=str(embedded.kubeconfig)))  # type: ignore[attr-defined]
    budgets = api.resources.get(api_version="policy/v1beta1", kind="PodDisruptionBudget")  # 1.20 serves v1beta1
    budgets.create(namespace=cluster.namespace, body={
        "apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget", "metadata": {"name": "keep-one"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}}})
    with pytest.raises(DrainBlocked, match="guarded"):
        cluster.drain(node, timeout=4)
    assert next(p for p in cluster.list_pods() if p.name == pod).phase == "Running", "the budget kept it running"
    cluster.uncordon(node)
    cluster.delete_job("guarded")


def test_the_backfill_quota_queues_a_second_backfill_pod_while_the_daily_pod_runs(
        cluster: KubernetesCluster, collector: Collector) -> None:
    short = py("import time; time.sleep(6)")
    cluster.submit_job(JobSpec(name="daily", command=SLEEPER, priority_class=PRIORITY_DAILY), sink=collector)
    _running(cluster, "daily")
    for name in ("backfill-1", "backfill-2"):
        cluster.submit_job(JobSpec(name=name, command=short, priority_class=PRIORITY_BACKFILL,
                                   labels={"kind": "backfill"}), sink=collector)
        if name == "backfill-1":
            assert _running(cluster, "backfill-1")
    # The quota (1 backfill pod) refuses the second backfill's pod until the first has finished.
    assert cluster.list_pods(labels={"job-name": "backfill-2"}) == []
    assert cluster.wait_job("backfill-1", timeout=60).succeeded
    assert cluster.wait_job("backfill-2", timeout=120).succeeded
    starts = {e.job: e.ts for e in collector.of(PodStarted)}
    ends = {e.job: e.ts for e in collector.of(PodExited)}
    assert starts["backfill-2"] >= ends["backfill-1"] - 1.0, "the two backfill pods never ran together"
    cluster.delete_job("daily")


def test_pipeline_lines_that_are_not_events_are_ignored_and_unknown_kinds_kept(cluster: KubernetesCluster,
                                                                              collector: Collector) -> None:
    code = "import json\nprint('hello')\nprint(json.dumps({'event': 'brand_new', 'x': 1}))"
    cluster.submit_job(JobSpec(name="chatty", command=py(code)), sink=collector)
    cluster.wait_job("chatty", timeout=60)
    unknown = collector.of(UnknownEvent)
    assert len(unknown) == 1 and unknown[0].name == "brand_new"  # type: ignore[attr-defined]
