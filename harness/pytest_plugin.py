"""The pytest plugin: glue over the library, nothing more.

- collects experiment files (``*.yaml``/``*.yml``/``*.json`` in a folder named
  ``experiments``) as test items, one per experiment;
- options ``--cluster``, ``--chaos-min-score``, ``--chaos-baseline``, ``--chaos-max-drop``,
  ``--chaos-seed``, ``--keep-cluster``, ``--chaos-reports``;
- a ``chaos_environment`` fixture for tests of your own;
- the score gate: the session fails when the suite score is below ``--chaos-min-score`` or
  dropped more than ``--chaos-max-drop`` points below the ``--chaos-baseline`` run.

An experiment item fails when the experiment could not run or scored below the
minimum; each check's verdict and evidence is printed either way. The exit
status is the gate's: a suite that passes its gate exits 0 even when one
experiment scored below the minimum; one that could not run fails the session.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.baseline import describe
from harness.cluster.options import ARGUMENTS, ClusterOptions, options_from
from harness.errors import HarnessError
from harness.experiment.loader import load_experiment
from harness.experiment.model import ExperimentSpec
from harness.experiment.result import ExperimentResult
from harness.lifecycle import install_signal_handlers, restore_signal_handlers
from harness.runtime import Environment
from harness.suite import DEFAULT_MIN_SCORE, SuiteResult
from harness.suite_runner import SuiteRunner
from harness.workload.declaration import load_workload
from harness.workload.role import Workload

_RUNNER = pytest.StashKey[SuiteRunner]()
_SUITE = pytest.StashKey[SuiteResult]()
_HANDLERS = pytest.StashKey[dict[int, Any]]()
_LOW_SCORES = pytest.StashKey[int]()
_WORKLOAD = pytest.StashKey[Workload | None]()
_EXTENSIONS = (".yaml", ".yml", ".json")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaos", "resilience experiments on ML training pipelines")
    for argument in ARGUMENTS:  # --cluster, --context, --allow-context, ...: the same as mlchaos run's
        argument.add_to(group.addoption, dest_prefix="chaos_")
    group.addoption("--chaos-min-score", type=float, default=DEFAULT_MIN_SCORE,
                    help="fail the session when the suite's resilience score (0-100) is below this")
    group.addoption("--chaos-baseline", default=None,
                    help="an earlier summary.json; fail when the suite score drops more than --chaos-max-drop below it")
    group.addoption("--chaos-max-drop", type=float, default=5.0, help="points the score may drop below the baseline")
    group.addoption("--chaos-seed", type=int, default=None, help="override every pipeline's seed (replay a run)")
    group.addoption("--pipeline", default=None, metavar="FILE",
                    help="the pipeline under test, a pipeline.yaml (default: each experiment's, else the reference)")
    group.addoption("--keep-cluster", action="store_true", help="keep the cluster's work folder after the run")
    group.addoption("--chaos-reports", default="reports", help="folder for run reports and the 'latest' link")


def pytest_configure(config: pytest.Config) -> None:
    pipeline = config.getoption("--pipeline")
    try:
        config.stash[_WORKLOAD] = load_workload(Path(pipeline)) if pipeline else None
    except HarnessError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_RUNNER] = SuiteRunner(
        reports_root=Path(config.getoption("--chaos-reports")),
        min_score=config.getoption("--chaos-min-score"),
        baseline=Path(b) if (b := config.getoption("--chaos-baseline")) else None,
        max_drop=config.getoption("--chaos-max-drop"),
        seed=config.getoption("--chaos-seed"),
        cluster=_cluster_options(config),
        progress=lambda line: _progress(config, line),
    )
    config.stash[_HANDLERS] = install_signal_handlers()


def _cluster_options(config: pytest.Config) -> ClusterOptions:
    try:
        return options_from({a.dest: config.getoption(f"chaos_{a.dest}") for a in ARGUMENTS},
                            keep_cluster=config.getoption("--keep-cluster"))
    except HarnessError as exc:
        raise pytest.UsageError(str(exc)) from None


def _progress(config: pytest.Config, line: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    # Output capture holds everything a running test writes; progress must reach the terminal now.
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        reporter.write_line(f"[chaos] {line}")
        reporter.flush()


def pytest_report_header(config: pytest.Config) -> str:
    seed = config.getoption("--chaos-seed")
    return (f"chaos: cluster={config.getoption('--cluster')} min-score={config.getoption('--chaos-min-score'):g} "
            f"seed={'from each experiment' if seed is None else seed}")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix in _EXTENSIONS and file_path.parent.name == "experiments":
        return ExperimentFile.from_parent(parent, path=file_path)
    return None


class ExperimentFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        spec = load_experiment(self.path, workload=self.config.stash[_WORKLOAD])
        yield ExperimentItem.from_parent(self, name=spec.name, spec=spec)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, HarnessError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))


class ExperimentFailed(Exception):
    """The experiment scored below the minimum or could not run."""


class ExperimentItem(pytest.Item):
    def __init__(self, *, spec: ExperimentSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec

    def runtest(self) -> None:
        runner = self.config.stash[_RUNNER]
        result = runner.run(self.spec)
        report = _describe(result)
        self.add_report_section("call", "chaos", report)
        if result.error:
            raise ExperimentFailed(report)
        if result.score.value < runner.min_score:
            self.config.stash[_LOW_SCORES] = self.config.stash.get(_LOW_SCORES, 0) + 1
            raise ExperimentFailed(report)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, (ExperimentFailed, HarnessError)):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"experiment {self.spec.name}"


def _describe(result: ExperimentResult) -> str:
    lines = [f"{result.name}: score {result.score.value:.1f} = {result.score.formula}"]
    if result.error:
        lines.append(f"  error: {result.error}")
    for check in result.checks:
        lines.append(f"  {check.verdict:7} {check.name} (weight {check.weight:g})")
        lines += [f"          {line}" for line in check.evidence]
    return "\n".join(lines)


@pytest.fixture(scope="session")
def chaos_environment(pytestconfig: pytest.Config) -> Environment:
    """The started embedded cluster the session's experiments run on."""
    return pytestconfig.stash[_RUNNER].environment()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    suite = config.stash[_RUNNER].close()
    handlers: dict[int, Any] = config.stash[_HANDLERS]
    restore_signal_handlers(handlers)
    if suite is None:
        return
    config.stash[_SUITE] = suite
    if not suite.passed and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    low_scores = config.stash.get(_LOW_SCORES, 0)
    if suite.passed and low_scores and session.testsfailed == low_scores:
        # The suite's score is the gate: experiments below the minimum show red, but do not fail the run alone.
        session.exitstatus = pytest.ExitCode.OK


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    suite = config.stash.get(_SUITE, None)
    if suite is None:
        return
    runner = config.stash[_RUNNER]
    terminalreporter.section("resilience score")
    for result in suite.experiments:
        terminalreporter.write_line(_describe(result))
    if suite.baseline is not None:
        for line in describe(suite.baseline):
            terminalreporter.write_line(line)
    verdict = "INTERRUPTED" if suite.interrupted else ("PASSED" if suite.passed else "FAILED")
    terminalreporter.write_line(
        f"resilience score {suite.score.value:.1f} (minimum {suite.min_score:g}): {verdict} = {suite.score.formula}"
    )
    terminalreporter.write_line(f"reports: {runner.run_dir} (summary.json, junit.xml, report.html); "
                                f"latest -> {runner.tag}")
