"""The uninterrupted reference run that resumed runs must match bit for bit.

Its final parameter hash is cached, keyed by the pipeline's source, the seed and
every setting that changes training, so a suite computes it once per version.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, replace
from pathlib import Path

import reference_pipeline

from harness.cluster.base import Cluster
from harness.errors import HarnessError
from harness.history.events import TrainingCompleted, of_type
from harness.history.store import History
from harness.workload.pipeline_run import PipelineRun
from harness.workload.settings import TRAINING_STEPS, PipelineSettings

BUCKET = "harness-reference-runs"


def default_cache_dir() -> Path:
    root = os.environ.get("HARNESS_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "ml-chaos-harness")
    return Path(root) / "reference-runs"


def pipeline_version() -> str:
    """A hash of the reference pipeline's source files."""
    digest = hashlib.sha256()
    root = Path(reference_pipeline.__file__).parent
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_key(settings: PipelineSettings) -> str:
    # Restart policy and timeouts do not change what training computes.
    relevant = replace(settings, backoff_limit=0, restart_policy="", step_timeout_seconds=0.0)
    blob = json.dumps({"pipeline": pipeline_version(), "settings": asdict(relevant)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def reference_params_sha256(
    *, cluster: Cluster, settings: PipelineSettings, s3_env: dict[str, str], cache_dir: Path | None = None
) -> str:
    """The final ``params_sha256`` of an uninterrupted run with ``settings``, cached."""
    cache = cache_dir or default_cache_dir()
    key = cache_key(settings)
    cached = cache / f"{key}.json"
    if cached.exists():
        return str(json.loads(cached.read_text())["params_sha256"])
    cache.mkdir(parents=True, exist_ok=True)
    run_id = f"reference-{key}"
    with History(cache / f"{key}.history.jsonl") as history:
        run = PipelineRun(
            cluster=cluster,
            sink=history.append,
            settings=settings,
            run_id=run_id,
            kind="daily",
            bucket=BUCKET,
            s3_env=s3_env,
            steps=TRAINING_STEPS,
        )
        run.start()
        outcome = run.wait(timeout=settings.step_timeout_seconds * len(TRAINING_STEPS))
        done = [e for e in of_type(history.events(), TrainingCompleted) if e.run_id == run_id]
    if not outcome.succeeded or not done:
        raise HarnessError(
            f"the uninterrupted reference run failed ({outcome.detail}); see {history.path} and fix the pipeline first"
        )
    tmp = cached.with_suffix(".tmp")
    tmp.write_text(json.dumps({"params_sha256": done[-1].params_sha256, "run_id": run_id, "key": key}))
    tmp.replace(cached)
    return done[-1].params_sha256
