"""Open checks: one signature, a registry a user's package adds to by decorator or entry point."""

from __future__ import annotations

import importlib
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from harness.checks import registry
from harness.checks.registry import CheckParams, CheckSpec, check, evaluate, known_checks
from harness.checks.verdict import CheckResult
from harness.errors import ExperimentError
from harness.evidence.run import RunEvidence
from harness.experiment.loader import load_experiment
from tests.checks.histories import RUN, graceful_then_forced
from tests.checks.layouts import FACTS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A registry holding the built-ins only, restored afterwards."""
    monkeypatch.setattr(registry, "_CHECKS", {})
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    import harness.checks.builtin as builtin

    importlib.reload(builtin)  # re-register the built-ins into the fresh table
    monkeypatch.setattr(registry, "_plugins_loaded", False)


def evidence() -> RunEvidence:
    return RunEvidence(events=tuple(graceful_then_forced()), run_id=RUN, facts=FACTS)


def test_the_builtin_checks_are_registered() -> None:
    assert {"resume-from-checkpoint", "zero-duplicate-artifacts", "steady-state", "pod-quota"} <= set(known_checks())


def test_a_check_registered_by_a_users_package_runs_with_its_options(clean_registry: None) -> None:
    import tests.checks.user_checks as user_checks

    importlib.reload(user_checks)
    spec = CheckSpec(name=user_checks.NAME, weight=2.0, options={"min_steps": 100})
    passed, failed = evaluate([spec, CheckSpec(name=user_checks.NAME, options={"min_steps": 500})], evidence())
    assert (passed.verdict, passed.weight) == ("pass", 2.0)
    assert failed.verdict == "fail" and "at least 500 wanted" in failed.evidence[0]


def test_a_check_from_an_entry_point_is_found(clean_registry: None, monkeypatch: pytest.MonkeyPatch) -> None:
    module = "tests.checks.entry_point_check"
    source = ROOT / "tests" / "checks" / "entry_point_check.py"
    assert source.exists()
    point = EntryPoint(name="team-checks", value=module, group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [point] if group == registry.ENTRY_POINT_GROUP else [])
    assert "trained-at-all" in known_checks()
    [result] = evaluate([CheckSpec(name="trained-at-all")], evidence())
    assert result.verdict == "pass"


def test_a_broken_plugin_names_itself(clean_registry: None, monkeypatch: pytest.MonkeyPatch) -> None:
    point = EntryPoint(name="broken", value="no_such_module_anywhere", group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [point])
    with pytest.raises(ExperimentError, match="check plugin broken .* could not be loaded"):
        known_checks()


def test_two_checks_of_one_name_are_refused(clean_registry: None) -> None:
    def first(evidence: RunEvidence, params: CheckParams) -> CheckResult:
        raise AssertionError("never run")

    def second(evidence: RunEvidence, params: CheckParams) -> CheckResult:
        raise AssertionError("never run")

    check("twice")(first)
    with pytest.raises(ExperimentError, match="two checks are named 'twice'"):
        check("twice")(second)


def test_a_check_that_raises_is_unknown_never_pass(clean_registry: None) -> None:
    @check("explodes")
    def explodes(evidence: RunEvidence, params: CheckParams) -> CheckResult:
        raise RuntimeError("boom")

    [result] = evaluate([CheckSpec(name="explodes", weight=3.0)], evidence())
    assert (result.verdict, result.weight) == ("unknown", 3.0)
    assert "RuntimeError: boom" in result.evidence[0]


def test_an_experiment_may_name_a_registered_user_check(tmp_path: Path, clean_registry: None) -> None:
    import tests.checks.user_checks as user_checks

    importlib.reload(user_checks)
    text = (ROOT / "experiments" / "pod-delete.yaml").read_text().replace(
        "      - name: steady-state\n", f"      - name: {user_checks.NAME}\n        min_steps: 500\n", 1)
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    spec = load_experiment(path)
    assert CheckSpec(name=user_checks.NAME, weight=1.0, options={"min_steps": 500}) in spec.checks
