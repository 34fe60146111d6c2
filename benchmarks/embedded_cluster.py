"""Embedded Kubernetes benchmark: prints measured figures, asserts nothing.

- control plane start, cold (first start after boot of this script) and warm (median of 3);
- Job created -> its container's process started, median and p95 over 20 pods;
- recovery (fault injected -> first new training step) after a graceful and a forced pod delete, and
  after the container's process is killed (a crash), under ``restartPolicy: Never`` and ``OnFailure``;
- resident memory of the control plane and the node agents.

Usage: ``make bench`` or ``.venv/bin/python benchmarks/embedded_cluster.py``.
"""

from __future__ import annotations

import os
import signal
import statistics
import tempfile
import time
from pathlib import Path

from kubernetes import client, config

from harness.cluster.base import JobSpec
from harness.cluster.embedded.cluster import EmbeddedCluster
from harness.cluster.kube.backend import KubernetesCluster
from harness.environment import embedded_environment
from harness.faults import pod_delete
from harness.faults.recorder import FaultRecorder
from harness.faults.role import FaultContext
from harness.history.events import Event, TrainStep
from harness.history.store import History
from harness.runtime import Environment
from harness.schedule import wait_for_training_step
from harness.undo import UndoLog
from harness.workload.pipeline_run import PipelineRun
from harness.workload.reference import reference_workload
from harness.workload.settings import PipelineSettings, steps_through_training

WORKLOAD = reference_workload()
TRAINING_STEPS = steps_through_training(WORKLOAD)


def control_plane_start(undo: UndoLog) -> list[float]:
    times = []
    for _ in range(4):
        with EmbeddedCluster(undo=undo) as cluster:
            times.append(cluster.started_in_seconds)
    return times


def _namespace(env: Environment) -> str:
    cluster = env.cluster
    if not isinstance(cluster, KubernetesCluster):
        raise TypeError(f"the benchmark needs the Kubernetes backend, got {type(cluster).__name__}")
    return cluster.namespace


def pod_start_latency(env: Environment, count: int = 20) -> list[float]:
    api = client.CoreV1Api(config.new_client_from_config(config_file=str(env.kubeconfig)))
    namespace = _namespace(env)
    latencies = []
    for i in range(count):
        name = f"start-{i}"
        created = time.time()
        env.cluster.submit_job(JobSpec(name=name, command=("sh", "-c", "date +%s.%N")), sink=lambda e: None)
        env.cluster.wait_job(name, timeout=60)
        pod = env.cluster.list_pods(labels={"job-name": name})[0]
        started = float(api.read_namespaced_pod_log(pod.name, namespace).strip())
        latencies.append(started - created)
    return latencies


def recovery(env: Environment, policy: str, tmp: Path) -> list[str]:
    """Delete gracefully at step 150, force-delete at 300, kill the container's process at 450 and 600
    (a crash: the second one meets the Job controller's or the kubelet's backoff)."""
    settings = PipelineSettings(restart_policy=policy, params={'train_steps': 800})
    run_id = f"bench-{policy.lower()}"
    lines = []
    api = client.CoreV1Api(config.new_client_from_config(config_file=str(env.kubeconfig)))
    with History(tmp / f"{run_id}.jsonl") as history:
        run = PipelineRun(cluster=env.cluster, sink=history.append, workload=WORKLOAD, settings=settings, run_id=run_id,
                          kind="daily", bucket="bench", s3_env=dict(env.s3_env), steps=TRAINING_STEPS)
        run.start()
        faults = FaultRecorder(sink=history.append, experiment=run_id,
                               context=FaultContext(cluster=env.cluster, seed=7))
        for step, how in ((150, "graceful delete"), (300, "forced delete"), (450, "process killed"),
                          (600, "process killed again")):
            wait_for_training_step(history, run_id=run_id, step=step, timeout=300)
            pods = [p for p in env.cluster.list_pods(labels={"run": run_id, "step": "train"})
                    if p.phase == "Running" and not p.deleting]
            hit = (pods[0].name, _attempt(history, pods[0].name))
            injected = time.time()
            if how.startswith("process killed"):
                status = api.read_namespaced_pod(pods[0].name, _namespace(env)).status
                statuses = (status.container_statuses if status else None) or []
                container_id = statuses[0].container_id if statuses else None
                if not container_id:
                    raise RuntimeError(f"pod {pods[0].name} reports no container id to kill")
                pid = int(container_id.split("://")[1])
                os.kill(pid, signal.SIGKILL)
            else:
                pod_delete.delete_running_pods(faults, pod_delete.PodDeleteParams(
                    labels={"run": run_id, "step": "train"},
                    grace_period_seconds=30 if how == "graceful delete" else 0))
            def new_step(e: Event, injected: float = injected, hit: tuple[str, int] = hit) -> bool:
                return isinstance(e, TrainStep) and e.run_id == run_id and e.ts > injected and (e.pod, e.attempt) != hit

            first = history.wait_for(new_step, timeout=120, what="the first new training step")
            lines.append(f"  {policy:9} {how:20}: first new training step after {first.ts - injected:.2f} s")
        outcome = run.wait(timeout=600)
        lines.append(f"  {policy:9} run {'succeeded' if outcome.succeeded else 'FAILED: ' + outcome.detail}")
    return lines


def _attempt(history: History, pod: str) -> int:
    steps = [e for e in history.events() if isinstance(e, TrainStep) and e.pod == pod]
    return steps[-1].attempt if steps else -1


def memory_mib(undo: UndoLog) -> dict[str, float]:
    rss: dict[str, float] = {}
    for record in undo.pending():
        if record.kind != "process":
            continue
        try:
            status = Path(f"/proc/{record.pid}/status").read_text()
        except OSError:
            continue
        kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        name = record.description.split(" of ")[0].split(" on ")[0]
        rss[name] = rss.get(name, 0.0) + kb / 1024
    return rss


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        undo = UndoLog(tmp / "undo")
        starts = control_plane_start(undo)
        print(f"embedded cluster start (control plane ready and both nodes Ready): first {starts[0]:.2f} s, "
              f"warm median {statistics.median(starts[1:]):.2f} s (runs {', '.join(f'{s:.2f}' for s in starts)})")
        os.environ["HARNESS_STATE_DIR"] = str(tmp / "state")
        with embedded_environment(run="bench", cache_dir=tmp / "cache") as env:
            latencies = sorted(pod_start_latency(env))
            p95 = latencies[round(0.95 * (len(latencies) - 1))]
            print(f"Job created -> container process started, {len(latencies)} pods: median "
                  f"{statistics.median(latencies) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
                  f"max {latencies[-1] * 1000:.0f} ms")
            rss = memory_mib(UndoLog(tmp / "state" / "undo"))
            print("resident memory: " + ", ".join(f"{k} {v:.0f} MiB" for k, v in sorted(rss.items())))
            print("recovery (fault -> first new training step):")
            for policy in ("Never", "OnFailure"):
                for line in recovery(env, policy, tmp):
                    print(line, flush=True)


if __name__ == "__main__":
    main()
