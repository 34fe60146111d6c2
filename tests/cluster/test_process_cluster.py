"""The process cluster follows Kubernetes pod, Job and node semantics."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from harness.cluster.base import JobSpec
from harness.errors import HarnessError
from harness.history.events import JobFinished, PodExited, PodStarted, TrainStep, UnknownEvent
from harness.undo import group_members

READY = 'import json,sys; print(json.dumps({"event": "ready"}), flush=True)\n'
SLEEP = "import time\nwhile True: time.sleep(1)\n"
HANDLE_TERM = "import signal,sys; signal.signal(signal.SIGTERM, lambda *a: sys.exit(3))\n"
IGNORE_TERM = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"


def is_ready(pod: str) -> Any:
    return lambda e: isinstance(e, UnknownEvent) and e.name == "ready" and e.pod == pod


def spec(helpers: Any, name: str, code: str, **kw: Any) -> JobSpec:
    kw.setdefault("backoff_limit", 0)
    kw.setdefault("backoff_base_seconds", 0.05)
    return JobSpec(name=name, command=helpers.py(code), **kw)


def test_sigterm_honoured_within_grace(make_cluster: Any, collector: Any, helpers: Any) -> None:
    c = make_cluster()
    c.submit_job(spec(helpers, "own", HANDLE_TERM + READY + SLEEP), sink=collector)
    c.submit_job(spec(helpers, "dflt", READY + SLEEP), sink=collector)
    collector.wait_for(is_ready("own-0"))
    collector.wait_for(is_ready("dflt-0"))
    own = c.delete_pod("own-0", grace_period_seconds=30)
    dflt = c.delete_pod("dflt-0", grace_period_seconds=30)
    assert (own.exit_code, own.reason, own.phase) == (3, "Deleted", "Failed")
    assert (dflt.exit_code, dflt.reason, dflt.phase) == (143, "Deleted", "Failed")
    # A deleted Job pod counts as a failure; backoff_limit 0 → the Job fails.
    status = c.wait_job("own", timeout=30)
    assert status.finished and not status.succeeded and status.failed == 1


def test_sigterm_ignored_gets_sigkill_after_grace(make_cluster: Any, collector: Any, helpers: Any) -> None:
    c = make_cluster()
    c.submit_job(spec(helpers, "stubborn", IGNORE_TERM + READY + SLEEP), sink=collector)
    collector.wait_for(is_ready("stubborn-0"))
    t0 = time.monotonic()
    pod = c.delete_pod("stubborn-0", grace_period_seconds=0.5)
    assert time.monotonic() - t0 >= 0.5
    assert pod.exit_code == 137 and pod.reason == "Deleted"
    exited = collector.wait_for(lambda e: isinstance(e, PodExited))
    assert exited.exit_code == 137 and exited.node == "node-a"


def test_grace_zero_kills_at_once(make_cluster: Any, collector: Any, helpers: Any) -> None:
    c = make_cluster()
    c.submit_job(spec(helpers, "j", HANDLE_TERM + READY + SLEEP, termination_grace_period_seconds=300), sink=collector)
    collector.wait_for(is_ready("j-0"))
    pid = c.pod("j-0").pid
    pod = c.delete_pod("j-0", grace_period_seconds=0)
    assert pod.exit_code == 137  # the SIGTERM handler never ran
    assert group_members(pid) == []


def test_default_grace_is_the_job_spec(make_cluster: Any, collector: Any, helpers: Any) -> None:
    c = make_cluster()
    c.submit_job(spec(helpers, "j", IGNORE_TERM + READY + SLEEP, termination_grace_period_seconds=0.3), sink=collector)
    collector.wait_for(is_ready("j-0"))
    assert c.delete_pod("j-0").exit_code == 137


def test_job_retries_with_exponential_backoff_then_fails(make_cluster: Any, collector: Any, helpers: Any) -> None:
    c = make_cluster()
    job = spec(helpers, "flaky", "import sys; print('attempt failing'); sys.exit(2)",
               backoff_limit=3, backoff_base_seconds=0.2, backoff_max_seconds=0.5)
    c.submit_job(job, sink=collector)
    status = c.wait_job("flaky", timeout=60)
    assert status.finished and not status.succeeded and status.failed == 4
    started = collector.of(PodStarted)
    exited = collector.of(PodExited)
    assert [p.pod for p in started] == ["flaky-0", "flaky-1", "flaky-2", "flaky-3"]
    assert [p.attempt for p in started] == [0, 1, 2, 3]
    assert all(e.exit_code == 2 and e.reason == "Error" for e in exited)
    gaps = [started[i + 1].ts - exited[i].ts for i in range(3)]
    for gap, expected in zip(gaps, [0.2, 0.4, 0.5]):  # doubling, capped at the max
        assert expected * 0.9 <= gap < expected + 10
    finished = collector.of(JobFinished)
    assert len(finished) == 1 and not finished[0].succeeded and finished[0].failures == 4
    assert collector.events[-1] == finished[0]
    for i in range(4):  # restartPolicy Never: every attempt keeps its logs
        assert (c.pod_log_dir(f"flaky-{i}") / "stdout.log").read_text() == "attempt failing\n"


def test_stdout_events_reach_sink_and_logs_of_every_attempt_stay(make_cluster: Any, collector: Any, helpers: Any) -> None:
    code = (
        "import json, os, sys\n"
        "print('plain text line')\n"
        "print(json.dumps({'event': 'train_step', 'run_id': 'r', 'step': 7, 'loss': 0.5, 'attempt': 9}))\n"
        "print('to stderr', file=sys.stderr)\n"
        "sys.exit(1 if os.environ['POD_NAME'].endswith('-0') else 0)\n"
    )
    c = make_cluster()
    c.submit_job(spec(helpers, "train", code, backoff_limit=2, labels={"app": "t"}), sink=collector)
    status = c.wait_job("train", timeout=60)
    assert status.succeeded and status.failed == 1
    steps = collector.of(TrainStep)
    assert [(s.pod, s.job, s.attempt, s.step, s.loss) for s in steps] == [
        ("train-0", "train", 0, 7, 0.5),
        ("train-1", "train", 1, 7, 0.5),
    ]
    kinds = [(type(e).__name__, e.pod) for e in collector.events]
    assert kinds == [
        ("PodStarted", "train-0"), ("TrainStep", "train-0"), ("PodExited", "train-0"),
        ("PodStarted", "train-1"), ("TrainStep", "train-1"), ("PodExited", "train-1"),
        ("JobFinished", ""),
    ]
    assert collector.of(JobFinished)[0].job == "train"
    for pod in ("train-0", "train-1"):
        d = c.pod_log_dir(pod)
        assert "plain text line" in (d / "stdout.log").read_text()
        assert (d / "stderr.log").read_text() == "to stderr\n"
    pods = c.list_pods(labels={"app": "t"})
    assert [(p.name, p.phase, p.exit_code, p.reason) for p in pods] == [
        ("train-0", "Failed", 1, "Error"), ("train-1", "Succeeded", 0, "Completed"),
    ]
    assert c.list_pods(labels={"app": "other"}) == []


def test_pod_environment(make_cluster: Any, collector: Any, helpers: Any) -> None:
    code = (
        "import json, os\n"
        "keys = ['POD_NAME', 'JOB_NAME', 'NODE_NAME', 'METRICS_PORT', 'EXTRA', 'PATH']\n"
        "print(json.dumps({'event': 'env', 'cwd': os.getcwd(), **{k: os.environ.get(k, '') for k in keys}}))\n"
    )
    c = make_cluster()
    c.submit_job(spec(helpers, "envjob", code, env={"EXTRA": "x"}, expose_metrics=True), sink=collector)
    c.wait_job("envjob", timeout=30)
    env = collector.wait_for(lambda e: isinstance(e, UnknownEvent) and e.name == "env")
    import json

    raw = json.loads(env.raw)
    pod = c.pod("envjob-0")
    assert (raw["POD_NAME"], raw["JOB_NAME"], raw["NODE_NAME"], raw["EXTRA"]) == ("envjob-0", "envjob", "node-a", "x")
    assert raw["PATH"] == os.environ["PATH"]
    assert raw["cwd"] == os.getcwd()  # pods run where the harness runs, like an image's WORKDIR
    assert pod.metrics_endpoint == f"127.0.0.1:{raw['METRICS_PORT']}"


def test_cordon_keeps_new_pod_pending_until_uncordon(make_cluster: Any, collector: Any, helpers: Any) -> None:
    c = make_cluster()
    c.submit_job(spec(helpers, "first", SLEEP), sink=collector)
    assert c.pod("first-0").node == "node-a"  # least loaded, ties by name
    c.cordon("node-b")
    c.submit_job(spec(helpers, "second", READY), sink=collector)
    time.sleep(0.3)
    assert c.pod("second-0").phase == "Pending" and c.pod("second-0").node == ""
    assert [(n.name, n.schedulable, n.running) for n in c.nodes()] == [("node-a", True, 1), ("node-b", False, 0)]
    c.uncordon("node-b")
    assert c.wait_job("second", timeout=30).succeeded
    assert c.pod("second-0").node == "node-b"
    assert c.pod("first-0").phase == "Running"  # cordon never stops running pods


def test_quota_keeps_extra_pods_pending(make_cluster: Any, collector: Any, helpers: Any) -> None:
    c = make_cluster(nodes={"node-a": 4}, max_running_pods=2)
    for name in ("q1", "q2", "q3"):
        c.submit_job(spec(helpers, name, SLEEP), sink=collector)
    assert [p.phase for p in c.list_pods()] == ["Running", "Running", "Pending"]
    time.sleep(0.3)
    assert c.pod("q3-0").phase == "Pending"
    c.delete_pod("q1-0", grace_period_seconds=0)
    helpers.wait_until(lambda: c.pod("q3-0").phase == "Running", what="q3 to start")
    assert sum(p.phase == "Running" for p in c.list_pods()) == 2


def test_priority_then_fifo(make_cluster: Any, collector: Any, helpers: Any) -> None:
    c = make_cluster(nodes={"node-a": 1})
    c.submit_job(spec(helpers, "blocker", SLEEP), sink=collector)
    c.submit_job(spec(helpers, "low1", "pass"), sink=collector)
    c.submit_job(spec(helpers, "high", "pass", priority=10), sink=collector)
    c.submit_job(spec(helpers, "low2", "pass"), sink=collector)
    c.submit_job(spec(helpers, "mid", "pass", priority=5), sink=collector)
    c.delete_job("blocker")
    for name in ("low1", "high", "low2", "mid"):
        assert c.wait_job(name, timeout=30).succeeded
    order = [e.job for e in collector.of(PodStarted)]
    assert order == ["blocker", "high", "mid", "low1", "low2"]


def test_drain_evicts_and_job_moves_to_another_node(make_cluster: Any, collector: Any, helpers: Any) -> None:
    c = make_cluster()
    c.submit_job(spec(helpers, "mover", READY + SLEEP, backoff_limit=2), sink=collector)
    collector.wait_for(is_ready("mover-0"))
    assert c.pod("mover-0").node == "node-a"
    evicted = c.drain("node-a", grace_period_seconds=5)
    assert [(p.name, p.reason, p.exit_code) for p in evicted] == [("mover-0", "Evicted", 143)]
    collector.wait_for(is_ready("mover-1"))
    assert c.pod("mover-1").node == "node-b"
    assert [n.schedulable for n in c.nodes()] == [False, True]
    assert c.job_status("mover").failed == 1 and c.job_status("mover").active == 1
    exited = collector.wait_for(lambda e: isinstance(e, PodExited))
    assert exited.reason == "Evicted"


def test_delete_job_stops_controller(make_cluster: Any, collector: Any, helpers: Any) -> None:
    c = make_cluster()
    c.submit_job(spec(helpers, "gone", READY + SLEEP, backoff_limit=5), sink=collector)
    collector.wait_for(is_ready("gone-0"))
    c.delete_job("gone")
    status = c.wait_job("gone", timeout=5)
    assert status.finished and status.active == 0
    time.sleep(0.2)
    assert [p.name for p in c.list_pods()] == ["gone-0"]
    assert c.pod("gone-0").exit_code == 143


def test_wait_job_timeout_and_unknown_names(make_cluster: Any, collector: Any, helpers: Any) -> None:
    c = make_cluster()
    c.submit_job(spec(helpers, "long", SLEEP), sink=collector)
    with pytest.raises(HarnessError, match="did not finish within"):
        c.wait_job("long", timeout=0.2)
    with pytest.raises(HarnessError, match="already exists"):
        c.submit_job(spec(helpers, "long", SLEEP), sink=collector)
    with pytest.raises(HarnessError, match="no pod named 'nope'"):
        c.delete_pod("nope")
    with pytest.raises(HarnessError, match="no node named 'node-z'"):
        c.cordon("node-z")
    with pytest.raises(HarnessError, match="no job named 'x'"):
        c.job_status("x")


def test_command_that_cannot_start_fails_the_pod(make_cluster: Any, collector: Any) -> None:
    c = make_cluster()
    c.submit_job(JobSpec(name="bad", command=("/nonexistent/binary",), backoff_limit=0), sink=collector)
    status = c.wait_job("bad", timeout=10)
    assert not status.succeeded
    pod = c.pod("bad-0")
    assert (pod.phase, pod.exit_code, pod.reason) == ("Failed", 128, "StartError")
    assert "cannot start" in (c.pod_log_dir("bad-0") / "stderr.log").read_text()


def test_close_kills_every_process_group(make_cluster: Any, collector: Any, helpers: Any, undo: Any) -> None:
    forking = (
        IGNORE_TERM
        + "import subprocess, sys\n"
        + "subprocess.Popen([sys.executable, '-c', 'import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)'])\n"
        + READY + SLEEP
    )
    changes: list[list[str]] = []
    c = make_cluster(on_pods_changed=lambda pods: changes.append([f"{p.name}:{p.phase}" for p in pods]))
    c.submit_job(spec(helpers, "f1", forking), sink=collector)
    c.submit_job(spec(helpers, "f2", forking), sink=collector)
    collector.wait_for(is_ready("f1-0"))
    collector.wait_for(is_ready("f2-0"))
    pids = [p.pid for p in c.list_pods()]
    assert all(len(group_members(pid)) == 2 for pid in pids)
    assert len(undo.pending()) == 2
    c.close(grace_period_seconds=0.3)
    c.close()  # idempotent
    assert all(group_members(pid) == [] for pid in pids)
    assert undo.pending() == []
    assert changes[-1] == ["f1-0:Failed", "f2-0:Failed"]
    with pytest.raises(HarnessError, match="closed"):
        c.submit_job(spec(helpers, "late", SLEEP), sink=collector)


def test_sink_may_delete_pods(make_cluster: Any, helpers: Any) -> None:
    """A fault fired from the event stream (e.g. at a training step) must not deadlock."""
    c = make_cluster()
    seen: list[str] = []

    def sink(event: Any) -> None:
        seen.append(type(event).__name__)
        if isinstance(event, TrainStep) and event.step == 3:
            c.delete_pod(event.pod, grace_period_seconds=5)

    code = (
        "import json, time\n"
        "for step in range(1, 1000):\n"
        "    print(json.dumps({'event': 'train_step', 'run_id': 'r', 'step': step, 'loss': 1.0}), flush=True)\n"
        "    time.sleep(0.05)\n"
    )
    c.submit_job(spec(helpers, "t", code), sink=sink)
    status = c.wait_job("t", timeout=30)
    assert not status.succeeded and c.pod("t-0").exit_code == 143
