"""quality-gate on hand-built histories: pass, fail, unknown."""

from __future__ import annotations

from dataclasses import replace

from harness.checks.quality_gate import check_quality_gate
from tests.checks.registry_histories import Registry


def test_only_passing_runs_registered_pass() -> None:
    r = Registry().evaluate("a").register("a", 1).evaluate("b", value=0.5)  # b failed the gate, never registered
    result = check_quality_gate(r.events, r.inventory())
    assert result.verdict == "pass", result.evidence


def test_registration_after_a_failed_evaluation_fails() -> None:
    r = Registry().evaluate("a").register("a", 1).evaluate("b", value=0.5).register("b", 2)
    result = check_quality_gate(r.events, r.inventory())
    assert result.verdict == "fail"
    assert any("of b after its evaluation failed the gate" in line for line in result.evidence), result.evidence


def test_an_alias_move_alone_after_a_failed_evaluation_fails() -> None:
    r = Registry().evaluate("b", value=0.5).claim("b", 1).move("b", 1)
    assert check_quality_gate(r.events).verdict == "fail"


def test_a_registered_version_without_any_passing_evaluation_fails() -> None:
    r = Registry().evaluate("a").register("a", 1).claim("z", 2)  # z's version exists, no evaluation, no events
    result = check_quality_gate(r.events, r.inventory())
    assert result.verdict == "fail"
    assert any("names run z" in line for line in result.evidence)


def test_an_evaluation_claiming_passed_below_its_threshold_fails() -> None:
    r = Registry().evaluate("a")
    r.events[-1] = type(r.events[-1])(ts=1.0, run_id="a", metric="auc", value=0.6, threshold=0.7,  # type: ignore[call-arg]
                                      passed=True)
    assert check_quality_gate(r.events).verdict == "fail"


def test_unknown_when_no_evaluation_happened() -> None:
    assert check_quality_gate([]).verdict == "unknown"
    r = Registry().register("a", 1)  # registered, but nothing shows evaluation ran: that is a fail
    assert check_quality_gate(r.events).verdict == "fail"


def test_a_registration_before_its_runs_evaluation_fails_even_if_that_evaluation_passes_later() -> None:
    r = Registry().register("a", 1).evaluate("a")
    result = check_quality_gate(r.events, r.inventory())
    assert result.verdict == "fail"
    assert any("before any evaluation of it" in line for line in result.evidence), result.evidence


def test_a_registry_version_whose_record_was_not_read_is_unknown_not_pass() -> None:
    r = Registry().evaluate("a").register("a", 1)
    inventory = r.inventory()
    unread = replace(inventory, bodies=())  # the version exists, its body was not read
    assert check_quality_gate(r.events, inventory).verdict == "pass"
    result = check_quality_gate(r.events, unread)
    assert result.verdict == "unknown", result.evidence
