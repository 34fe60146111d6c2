"""Game-day benchmark: a default game day on the embedded cluster; prints measured figures, asserts nothing.

- what the night did: runs completed and failed, faults injected per kind, goodput and its badput
  breakdown, MTTR p50/p95/max, steps lost, the score;
- what the harness cost: CPU seconds of the harness process itself, of the cluster and services it
  runs (control plane, etcd, node agents, S3, Prometheus, fault proxy), and of the pipeline's pods,
  sampled from /proc every 2 s over the process tree (a process's CPU counts up to its last sample,
  so a pod shorter than 2 s may be missed).

Usage: ``make bench-gameday DURATION=20m SEED=1`` or ``.venv/bin/python benchmarks/gameday.py --duration 20m``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import threading
import time
from pathlib import Path

from harness.gameday.main import GameDayOptions, gameday_main, parse_duration
from harness.lifecycle import install_signal_handlers

TICKS = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _cpu(pid: int) -> tuple[float, str]:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    return (int(fields[11]) + int(fields[12])) / TICKS, cmdline  # utime + stime


class TreeSampler:
    """The CPU seconds of every descendant process, by kind, sampled until stopped."""

    def __init__(self, pipeline_marker: str) -> None:
        self.marker = pipeline_marker
        self.seen: dict[int, tuple[float, str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(2.0):
            todo = _children(os.getpid())
            while todo:
                pid = todo.pop()
                try:
                    self.seen[pid] = _cpu(pid)
                except OSError:
                    continue
                todo += _children(pid)

    def totals(self) -> tuple[float, float]:
        """(pipeline pods, everything else the harness started), CPU seconds."""
        pipeline = sum(cpu for cpu, cmd in self.seen.values() if self.marker in cmd)
        return pipeline, sum(cpu for cpu, _ in self.seen.values()) - pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", default="20m")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--results", default="reports/gamedays")
    args = parser.parse_args()
    install_signal_handlers()
    options = GameDayOptions(duration_seconds=parse_duration(args.duration), seed=args.seed, results=args.results)
    before = {p.name for p in Path(args.results).glob("*")} if Path(args.results).is_dir() else set()
    t0, self0 = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF)
    with TreeSampler("reference_pipeline") as sampler:
        code = gameday_main(options, progress=lambda line: print(line, flush=True))
    wall = time.monotonic() - t0
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    harness_cpu = (self1.ru_utime - self0.ru_utime) + (self1.ru_stime - self0.ru_stime)
    (night,) = [p for p in Path(args.results).glob("*") if p.is_dir() and p.name not in before]
    summary = json.loads((night / "summary.json").read_text())
    f = summary["figures"]
    pipeline_cpu, services_cpu = sampler.totals()

    def seconds(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f}s"

    print(f"\ngame-day benchmark: {args.duration} (seed {args.seed}), night {night.name}, exit {code}")
    print(f"  wall time {wall:.0f}s; runs completed {f['runs_completed']}, failed {f['runs_failed']}; "
          f"score {summary['score']:.1f} ({summary['score_formula']})")
    print(f"  faults injected: {', '.join(f'{k} {v}' for k, v in sorted(f['faults'].items())) or 'none'}")
    print(f"  goodput {100 * f['goodput']:.1f}% ({f['productive_seconds']:.0f}s productive of "
          f"{f['elapsed_seconds']:.0f}s in runs)")
    for name, value in sorted(f["badput"].items(), key=lambda kv: -kv[1]):
        print(f"    badput {name:<19} {value:7.1f}s  {100 * value / max(f['elapsed_seconds'], 1e-9):5.1f}%")
    print(f"  MTTR p50 {seconds(f['mttr_p50'])}, p95 {seconds(f['mttr_p95'])}, max {seconds(f['mttr_max'])}; "
          f"unrecovered {f['unrecovered']}; steps lost {f['steps_lost']}")
    print(f"  CPU: harness process {harness_cpu:.0f}s ({100 * harness_cpu / wall:.1f}% of one core), "
          f"cluster and services {services_cpu:.0f}s ({100 * services_cpu / wall:.1f}%), "
          f"pipeline pods {pipeline_cpu:.0f}s ({100 * pipeline_cpu / wall:.1f}%)")


if __name__ == "__main__":
    main()
