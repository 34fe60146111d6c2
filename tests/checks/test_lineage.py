"""``lineage`` on hand-built histories: pass, fail (each kind of mix), unknown."""

from __future__ import annotations

from harness.checks.lineage import check_lineage
from harness.history.events import InputsRead
from tests.checks.layouts import LAYOUT
from tests.checks.lineage_histories import Runs, feature_key, model_key

D1, D2 = "2026-11-20", "2026-11-21"


def test_runs_that_used_their_own_inputs_pass() -> None:
    runs = Runs().full_run("r1", D1).full_run("r2", D2)
    result = check_lineage(runs.events, runs.inventory(), layout=LAYOUT)
    assert result.verdict == "pass", result.evidence
    assert len(result.evidence) == 2 and "own date 2026-11-21" in result.evidence[1]


def test_evaluating_the_latest_model_instead_of_its_own_fails() -> None:
    runs = Runs().full_run("r1", D1).full_run("r2", D2, eval_model=model_key("r1", D1))
    result = check_lineage(runs.events, runs.inventory(), layout=LAYOUT)
    assert result.verdict == "fail"
    (line,) = [e for e in result.evidence if e.startswith("run r2")]
    assert f"evaluate read model {model_key('r1', D1)} of date {D1}" in line and "of run r1" in line


def test_training_on_the_previous_dates_features_fails() -> None:
    runs = Runs().full_run("r1", D1).full_run("r2", D2, features_date=D1)
    result = check_lineage(runs.events, runs.inventory(), layout=LAYOUT)
    assert result.verdict == "fail"
    assert any(e.startswith("run r2") and f"train read features of date {D1}" in e for e in result.evidence)


def test_a_registry_version_pointing_at_another_runs_model_fails() -> None:
    runs = Runs().full_run("r1", D1).full_run("r2", D2)
    runs.stored["registry/reference/versions/000002.json"] = (
        b'{"version": 2, "run_id": "r2", "model_key": "' + model_key("r1", D1).encode() + b'"}')
    result = check_lineage(runs.events, runs.inventory(), layout=LAYOUT)
    assert result.verdict == "fail"
    assert any("versions/000002.json of run r2 points at" in e for e in result.evidence)


def test_mixed_data_versions_and_keys_the_bucket_never_held_fail() -> None:
    runs = Runs().full_run("r1", D1)
    runs.read("r1", "evaluate", "holdout", D1, [feature_key(D1, 0)], version="seed-8")
    runs.read("r1", "train", "features", D1, ["features/reference/date=2026-11-20/entity_shard=99.npz"])
    result = check_lineage(runs.events, runs.inventory(), layout=LAYOUT)
    assert result.verdict == "fail"
    assert "mixed data versions seed-7, seed-8" in result.evidence[0]
    assert "which the bucket never held" in result.evidence[0]


def test_unknown_when_no_run_reported_inputs() -> None:
    runs = Runs().full_run("r1", D1)
    runs.events = [e for e in runs.events if not isinstance(e, InputsRead)]
    result = check_lineage(runs.events, runs.inventory(), layout=LAYOUT)
    assert result.verdict == "unknown"
    assert any("no run reported its inputs" in e for e in result.evidence)
    assert any("run r1 evaluated, registered, trained without reporting" in e for e in result.evidence)


def test_unknown_when_a_run_evaluated_without_reporting_the_model() -> None:
    runs = Runs().full_run("r1", D1)
    runs.events = [e for e in runs.events if not (isinstance(e, InputsRead) and e.role == "model")]
    result = check_lineage(runs.events, runs.inventory(), layout=LAYOUT)
    assert result.verdict == "unknown" and "run r1 evaluated, registered without" in result.evidence[0]
