"""Run one experiment through Chaos Toolkit on a started environment."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chaoslib.experiment import run_experiment as chaoslib_run
from chaoslib.run import RunEventHandler

from harness import lifecycle, runtime
from harness.experiment.model import ExperimentSpec
from harness.experiment.progress import ProgressReporter
from harness.experiment.result import ExperimentResult
from harness.experiment.session import ExperimentSession


class ExperimentInterrupted(KeyboardInterrupt):
    """Chaos Toolkit swallows Ctrl-C and SIGTERM; this re-raises them once the run is closed."""


class _StopOnInterrupt(RunEventHandler):  # type: ignore[misc]  # chaoslib is untyped
    """Chaos Toolkit catches Ctrl-C and SIGTERM and then waits for the method to finish on its own;
    this stops the experiment's waits and pipeline runs at once, so the run ends within seconds."""

    def __init__(self, experiment: runtime.ActiveExperiment) -> None:
        super().__init__()
        self._experiment = experiment

    def started(self, experiment: Any, journal: Any) -> None:
        # Chaos Toolkit's own SIGTERM handler raises inside the running activity, which reports it as a failed
        # activity and goes on; the harness's handler raises KeyboardInterrupt, which ends the method.
        lifecycle.reinstall_signal_handlers()

    def interrupted(self, experiment: Any, journal: Any) -> None:
        self._experiment.interrupt("the run was interrupted (SIGTERM)")

    def signal_exit(self) -> None:
        self._experiment.interrupt("the run was interrupted (a signal)")


def run_experiment(
    *,
    spec: ExperimentSpec,
    env: runtime.Environment,
    out_dir: Path,
    tag: str,
    progress: Callable[[str], None] | None = None,
) -> ExperimentResult:
    """Run ``spec``'s method via ``chaoslib.experiment.run_experiment``, then judge the history.

    The journal is kept as ``out_dir/journal.json``. An interrupted run comes back with
    status ``interrupted`` and every check ``unknown``, after everything it started was stopped.
    """
    session = ExperimentSession(spec=spec, env=env, out_dir=out_dir, tag=tag)
    active = session.begin()
    journal = None
    try:
        handlers: list[RunEventHandler] = [_StopOnInterrupt(active)]
        if progress:
            handlers.append(ProgressReporter(experiment=spec.name, emit=progress))
        journal = chaoslib_run(dict(spec.document), settings={}, event_handlers=handlers)
    finally:
        result = session.finish(journal)
    (out_dir / "journal.json").write_text(json.dumps(journal, indent=2, default=str))
    return result
