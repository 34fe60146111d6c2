"""Recovery benchmark: prints measured figures, asserts nothing.

- restart floor: a fresh process that imports torch, loads a checkpoint and does one step;
- checkpoint overhead: training throughput with and without periodic checkpoints, on the embedded cluster;
- the chaos suite as ``make chaos`` runs it (``pytest experiments``): its wall time, and from its
  summary.json the recovery time (fault injected -> first new training step) and steps lost per fault,
  and the daily run's slowdown under the backfill storm.

Usage: ``make bench`` or ``.venv/bin/python benchmarks/recovery.py [--skip-suite]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from harness.environment import embedded_environment
from harness.history.events import RunStarted, StepFinished, TrainStep, of_type
from harness.history.store import History, load
from harness.runtime import Environment
from harness.workload.pipeline_run import PipelineRun
from harness.workload.reference import reference_workload
from harness.workload.settings import PipelineSettings, steps_through_training
from reference_pipeline.model import SPECS, build

WORKLOAD = reference_workload()
TRAINING_STEPS = steps_through_training(WORKLOAD)

ROOT = Path(__file__).resolve().parents[1]


def restart_floor(tmp: Path, repeats: int = 5) -> float:
    spec = SPECS["small"]
    model = build(spec, 33)
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.learning_rate)
    model(torch.randn(8, 33)).sum().backward()
    optimizer.step()
    path = tmp / "ckpt.pt"
    torch.save({"inputs": 33, "model": model.state_dict(), "optimizer": optimizer.state_dict()}, path)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, str(Path(__file__).with_name("restart_floor_child.py")), str(path)],
                       check=True, cwd=ROOT)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def train_steps(env: Environment, settings: PipelineSettings, run_id: str, tmp: Path) -> list[TrainStep]:
    with History(tmp / f"{run_id}.jsonl") as history:
        run = PipelineRun(cluster=env.cluster, sink=history.append, workload=WORKLOAD, settings=settings, run_id=run_id,
                          kind="daily", bucket="bench", s3_env=dict(env.s3_env), steps=TRAINING_STEPS)
        run.start()
        outcome = run.wait(timeout=600)
        steps = [e for e in of_type(history.events(), TrainStep) if e.run_id == run_id]
    if not outcome.succeeded or len(steps) < 2:
        raise SystemExit(f"benchmark run {run_id} failed: {outcome.detail}")
    return steps


def rate(steps: list[TrainStep]) -> float:
    return (steps[-1].step - steps[0].step) / (steps[-1].ts - steps[0].ts)


def stall_share(steps: list[TrainStep], every: int) -> float:
    """Share of training time the loop spent beyond a normal step at the steps that checkpoint."""
    intervals = {b.step: b.ts - a.ts for a, b in itertools.pairwise(steps)}
    typical = statistics.median(intervals.values())
    extra = sum(max(0.0, t - typical) for step, t in intervals.items() if (step - 1) % every == 0)
    return extra / (steps[-1].ts - steps[0].ts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-suite", action="store_true", help="do not time the whole chaos suite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        floor = restart_floor(tmp)
        print(f"restart floor (fresh process, import torch, load checkpoint, one step): {floor:.2f} s (median of 5)")
        with embedded_environment(cache_dir=tmp / "cache") as env:
            base = PipelineSettings()
            with_ck, without_ck, stalls = [], [], []
            for i in range(3):  # alternate, so drift on a shared machine hits both alike
                steps = train_steps(env, base, f"bench-ckpt-{i}", tmp)
                with_ck.append(rate(steps))
                stalls.append(stall_share(steps, every=100))
                without_ck.append(rate(train_steps(env, PipelineSettings(params={'checkpoint_every': 10**9}),
                                                   f"bench-nockpt-{i}", tmp)))
            w, wo = statistics.mean(with_ck), statistics.mean(without_ck)
            print(f"training throughput over 3 alternating pairs of runs: {wo:.1f} steps/s without checkpoints "
                  f"(runs {', '.join(f'{r:.1f}' for r in without_ck)}), {w:.1f} with a checkpoint every 100 steps "
                  f"(runs {', '.join(f'{r:.1f}' for r in with_ck)}): overhead {100 * (1 - w / wo):.2f} %")
            print(f"checkpoint stall inside the runs with checkpoints (extra time of checkpointing steps over the "
                  f"median step, share of training time): {100 * statistics.mean(stalls):.2f} %")
        if not args.skip_suite:
            suite(floor, tmp)


def suite(floor: float, tmp: Path) -> None:
    """Time the whole chaos suite as ``make chaos`` runs it, then print its per-fault figures."""
    reports = tmp / "reports"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "experiments", "--chaos-reports", str(reports)],
                          cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    summary = json.loads((reports / "latest" / "summary.json").read_text())
    print(f"chaos suite: {len(summary['experiments'])} experiments in {wall:.1f} s wall "
          f"(pytest exit {proc.returncode}), score {summary['score']:.1f}")
    for exp in summary["experiments"]:
        print(f"  {exp['name']}: score {exp['score']:.1f} in {exp['duration_seconds']:.1f} s")
        for f in exp["faults"]:
            if f["recovery_seconds"] is None:
                print(f"    {f['name']} on {f['target']}: did not end a training attempt")
                continue
            how = "graceful" if f["graceful"] else "SIGKILL"
            print(f"    {f['name']} ({how}, exit {f['exit_code']}): recovery {f['recovery_seconds']:.2f} s "
                  f"({f['recovery_seconds'] / floor:.2f}x floor), steps lost {f['steps_lost']}")
        for check in exp["checks"]:
            if check["name"] == "slo:daily-run-sla":
                print(f"    daily run under the backfill storm / idle (Prometheus): {check['evidence'][-1]}")
        durations = _run_durations(Path(exp["history"]))
        if len(durations) > 1:
            print("    run durations from the history: "
                  + ", ".join(f"{run}: {seconds:.1f} s" for run, seconds in durations.items()))


def _run_durations(history: Path) -> dict[str, float]:
    """Daily runs' durations (first step started to register finished), from a history file."""
    started: dict[str, float] = {}
    finished: dict[str, float] = {}
    for event in load(history):
        if isinstance(event, RunStarted) and event.kind == "daily":
            started.setdefault(event.run_id, event.ts)
        if isinstance(event, StepFinished) and event.step_name == "register":
            finished[event.run_id] = event.ts
    return {run: finished[run] - ts for run, ts in started.items() if run in finished}


if __name__ == "__main__":
    main()
