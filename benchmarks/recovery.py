"""Recovery benchmark: prints measured figures, asserts nothing.

- restart floor: a fresh process that imports torch, loads a checkpoint and does one step;
- recovery after SIGTERM and after SIGKILL (fault injected -> first new training step) and steps lost,
  from a run of experiments/pod-delete.yaml on the embedded cluster;
- checkpoint overhead: training throughput with and without periodic checkpoints, same cluster;
- wall time of the chaos suite (``pytest experiments``, what ``make chaos`` runs after setup).

Usage: ``make bench`` or ``.venv/bin/python benchmarks/recovery.py [--skip-suite]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from harness.environment import embedded_environment
from harness.experiment.loader import load_experiment
from harness.experiment.runner import run_experiment
from harness.history.events import TrainStep, of_type
from harness.history.store import History
from harness.workload.pipeline_run import PipelineRun
from harness.workload.settings import TRAINING_STEPS, PipelineSettings
from reference_pipeline.model import SPECS, build

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


def train_steps(env, settings: PipelineSettings, run_id: str, tmp: Path) -> list[TrainStep]:
    with History(tmp / f"{run_id}.jsonl") as history:
        run = PipelineRun(cluster=env.cluster, sink=history.append, settings=settings, run_id=run_id,
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
    intervals = {b.step: b.ts - a.ts for a, b in zip(steps, steps[1:])}
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
            spec = load_experiment(ROOT / "experiments" / "pod-delete.yaml")
            result = run_experiment(spec=spec, env=env, out_dir=tmp / "pod-delete", tag="bench")
            for f in result.faults:
                kind = "SIGTERM, 30 s grace" if f.graceful else "SIGKILL"
                rec = f"{f.recovery_seconds:.2f} s ({f.recovery_seconds / floor:.2f}x floor)" if f.recovery_seconds else "n/a"
                print(f"recovery after {kind}: {rec}; steps lost {f.steps_lost} "
                      f"(checkpoint every {f.checkpoint_every}); restored step {f.restored_step}")
            print(f"pod-delete score {result.score.value:.1f}: "
                  + ", ".join(f"{c.name}={c.verdict}" for c in result.checks))
            base = PipelineSettings()
            with_ck, without_ck, stalls = [], [], []
            for i in range(3):  # alternate, so drift on a shared machine hits both alike
                steps = train_steps(env, base, f"bench-ckpt-{i}", tmp)
                with_ck.append(rate(steps))
                stalls.append(stall_share(steps, every=100))
                without_ck.append(rate(train_steps(env, PipelineSettings(checkpoint_every=10**9),
                                                   f"bench-nockpt-{i}", tmp)))
            w, wo = statistics.mean(with_ck), statistics.mean(without_ck)
            print(f"training throughput over 3 alternating pairs of runs: {wo:.1f} steps/s without checkpoints "
                  f"(runs {', '.join(f'{r:.1f}' for r in without_ck)}), {w:.1f} with a checkpoint every 100 steps "
                  f"(runs {', '.join(f'{r:.1f}' for r in with_ck)}): overhead {100 * (1 - w / wo):.2f} %")
            print(f"checkpoint stall inside the runs with checkpoints (extra time of checkpointing steps over the "
                  f"median step, share of training time): {100 * statistics.mean(stalls):.2f} %")
    if not args.skip_suite:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "experiments", "--chaos-reports",
                               str(Path(tempfile.gettempdir()) / "bench-reports")], cwd=ROOT,
                              capture_output=True, text=True)
        print(f"chaos suite wall time (pytest experiments, exit {proc.returncode}): {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
