"""The uninterrupted run that resumed runs must match bit for bit.

Its final parameter digest and its digest trail are cached, keyed by the
workload's version (its code and declaration), the seed and every setting that
changes training, so a suite computes it once per pipeline version.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from harness.cluster.base import Cluster
from harness.errors import HarnessError
from harness.evidence.reference import ReferenceRun
from harness.history.events import DigestTrail, TrainingCompleted, of_type
from harness.history.store import History
from harness.workload.pipeline_run import PipelineRun
from harness.workload.role import Workload
from harness.workload.settings import PipelineSettings, effective_params, steps_through_training

BUCKET = "harness-reference-runs"


def default_cache_dir() -> Path:
    root = os.environ.get("HARNESS_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "ml-chaos-harness")
    return Path(root) / "reference-runs"


def cache_key(workload: Workload, settings: PipelineSettings) -> str:
    """Restart policy and timeouts do not change what training computes; everything else does."""
    relevant = replace(settings, backoff_limit=0, restart_policy="", step_timeout_seconds=0.0, params={})
    blob = json.dumps({"pipeline": workload.name, "version": workload.version(), "date": relevant.date,
                       "seed": relevant.seed, "gpus": relevant.gpus, "grace": relevant.termination_grace_period_seconds,
                       "params": effective_params(workload, settings)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def reference_run(
    *, cluster: Cluster, workload: Workload, settings: PipelineSettings, s3_env: dict[str, str],
    cache_dir: Path | None = None,
) -> ReferenceRun:
    """What an uninterrupted run of ``workload`` with ``settings`` computed, cached."""
    cache = cache_dir or default_cache_dir()
    key = cache_key(workload, settings)
    cached = cache / f"{key}.json"
    if cached.exists():
        return _parse(json.loads(cached.read_text()))
    cache.mkdir(parents=True, exist_ok=True)
    run_id = f"reference-{key}"
    steps = steps_through_training(workload)
    with History(cache / f"{key}.history.jsonl") as history:
        run = PipelineRun(cluster=cluster, sink=history.append, workload=workload, settings=settings,
                          run_id=run_id, kind="daily", bucket=BUCKET, s3_env=s3_env, steps=steps)
        run.start()
        outcome = run.wait(timeout=settings.step_timeout_seconds * len(steps))
        events = history.events()
    done = [e for e in of_type(events, TrainingCompleted) if e.run_id == run_id]
    if not outcome.succeeded or not done:
        raise HarnessError(f"the uninterrupted run of pipeline {workload.name} failed ({outcome.detail}); "
                           f"see {cache / (key + '.history.jsonl')} and fix the pipeline first")
    trail = {e.step: dict(e.components) for e in of_type(events, DigestTrail) if e.run_id == run_id}
    doc = {"params_sha256": done[-1].params_sha256, "run_id": run_id, "key": key,
           "trail": {str(step): components for step, components in sorted(trail.items())}}
    tmp = cached.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(cached)
    return _parse(doc)


def _parse(doc: Mapping[str, object]) -> ReferenceRun:
    raw_trail = doc.get("trail")
    trail = ({int(step): dict(c) for step, c in raw_trail.items() if isinstance(c, dict)}
             if isinstance(raw_trail, dict) else {})
    return ReferenceRun(params_sha256=str(doc["params_sha256"]), trail=trail)
