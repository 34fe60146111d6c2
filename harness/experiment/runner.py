"""Run one experiment through Chaos Toolkit on a started environment."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from chaoslib.experiment import run_experiment as chaoslib_run

from harness import runtime
from harness.experiment.model import ExperimentSpec
from harness.experiment.progress import ProgressReporter
from harness.experiment.result import ExperimentResult
from harness.experiment.session import ExperimentSession


class ExperimentInterrupted(KeyboardInterrupt):
    """Chaos Toolkit swallows Ctrl-C and SIGTERM; this re-raises them once the run is closed."""


def run_experiment(
    *,
    spec: ExperimentSpec,
    env: runtime.Environment,
    out_dir: Path,
    tag: str,
    progress: Callable[[str], None] | None = None,
) -> ExperimentResult:
    """Run ``spec``'s method via ``chaoslib.experiment.run_experiment``, then judge the history.

    The journal is kept as ``out_dir/journal.json``. Raises ``ExperimentInterrupted``
    after cleaning up when the run was interrupted.
    """
    session = ExperimentSession(spec=spec, env=env, out_dir=out_dir, tag=tag)
    session.begin()
    journal = None
    try:
        handlers = [ProgressReporter(experiment=spec.name, emit=progress)] if progress else []
        journal = chaoslib_run(dict(spec.document), settings={}, event_handlers=handlers)
    finally:
        result = session.finish(journal)
    (out_dir / "journal.json").write_text(json.dumps(journal, indent=2, default=str))
    if journal is not None and journal.get("status") == "interrupted":
        raise ExperimentInterrupted(f"experiment {spec.name} was interrupted")
    return result
