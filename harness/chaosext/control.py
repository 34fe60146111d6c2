"""The harness as a Chaos Toolkit control, so an experiment also runs with the stock ``chaos run``.

Under the harness runner (pytest, ``mlchaos run``) an experiment is already
active and this control does nothing. Under ``chaos run`` it starts the
embedded cluster before the experiment, and afterwards judges the history,
writes the reports under ``reports/`` and stops the cluster.
"""

from __future__ import annotations

import re
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from harness import runtime
from harness.cluster.options import ARGUMENTS, options_from
from harness.environment import open_environment
from harness.experiment.loader import spec_from_document
from harness.experiment.session import ExperimentSession
from harness.report.writer import write_reports
from harness.suite import summarize
from harness.workload.declaration import load_workload

__all__ = ["before_experiment_control", "after_experiment_control", "cleanup_control"]

_stack = ExitStack()
_session: ExperimentSession | None = None
_tag = ""


def before_experiment_control(context: dict[str, Any], **kwargs: Any) -> None:
    """Start the embedded cluster and activate the experiment, unless the harness already did."""
    global _session, _tag
    if runtime.is_active():
        return
    # Chaos Toolkit hands controls the parsed document, not its file name: name it by its title.
    name = re.sub(r"[^a-z0-9]+", "-", str(context.get("title", "experiment")).lower()).strip("-")[:40]
    configuration = context.get("configuration") or {}
    # harness_pipeline: the pipeline under test (a pipeline.yaml); relative paths are from the working folder.
    pipeline = configuration.get("harness_pipeline")
    workload = load_workload(Path(str(pipeline))) if pipeline else None
    spec = spec_from_document(context, path=Path(f"{name or 'experiment'}.yaml"), workload=workload)
    _tag = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    # harness_cluster, harness_context, harness_kubeconfig, ... : the mlchaos run options, named harness_<dest>.
    options = options_from({a.dest: configuration.get(f"harness_{a.dest}") for a in ARGUMENTS})
    env = _stack.enter_context(open_environment(options=options, run=_tag,
                                                kubeconfig_copy=Path("reports") / _tag / "kubeconfig", progress=print))
    _session = ExperimentSession(spec=spec, env=env, out_dir=Path("reports") / _tag / spec.name, tag=_tag)
    _session.begin()


def after_experiment_control(context: dict[str, Any], state: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """Judge the run, write ``reports/<tag>/`` and stop what ``before_experiment_control`` started."""
    global _session
    if _session is None:
        return
    session, _session = _session, None
    try:
        cluster, version = session.env.cluster.kind, session.env.cluster.version
        result = session.finish(state)
        suite = summarize(
            run_id=_tag,
            cluster=cluster,
            kubernetes_version=version,
            started_at=result.started_at,
            ended_at=result.ended_at,
            results=[result],
            min_score=0.0,
        )
        write_reports(suite, Path("reports") / _tag)
        print(f"resilience score {suite.score.value:.1f}: reports/{_tag}/report.html")
    finally:
        _stack.close()


def cleanup_control() -> None:
    """Stop the cluster even when the experiment never reached its end."""
    _stack.close()
