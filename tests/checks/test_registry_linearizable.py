"""registry-linearizable on hand-built registry histories: pass, each kind of fail, unknown."""

from __future__ import annotations

from harness.checks.registry_linearizable import check_registry
from tests.checks.registry_histories import ALIAS_KEY, PREFIX, Registry


def racing_correctly() -> Registry:
    """Three runs register at once: each CAS either lands on the current alias or is refused and retried."""
    r = Registry()
    r.claim("a", 1).claim("b", 2).claim("c", 3)
    r.move("a", 1).move("b", 2)
    r.move("c", 3, expected="stale", from_version=0, land=False)  # refused: b moved first
    r.move("c", 3)
    for run, v in (("a", 1), ("b", 2), ("c", 3)):
        r.registered(run, v)
    return r


def test_concurrent_moves_under_the_lock_pass() -> None:
    r = racing_correctly()
    result = check_registry(r.events, r.inventory())
    assert result.verdict == "pass", result.evidence
    assert "4 alias write attempt(s), 3 landed, 1 refused" in result.evidence[0]


def test_a_move_made_against_a_replaced_version_is_a_lost_update() -> None:
    r = Registry().claim("a", 1).claim("b", 2).claim("c", 3)
    r.move("a", 1)
    first = r.alias_writes[-1]
    r.move("b", 2)
    r.move("c", 3, expected=first, from_version=1)  # read v1, wrote blind over v2
    r.registered("a", 1).registered("b", 2).registered("c", 3)
    result = check_registry(r.events, r.inventory())
    assert result.verdict == "fail"
    assert any("lost update" in line and "v3 by c" in line for line in result.evidence), result.evidence


def test_a_backwards_move_fails() -> None:
    r = Registry().claim("a", 1).claim("b", 2)
    r.move("b", 2)
    r.move("a", 1, expected="", from_version=0)  # a read the absent alias, then wrote over v2
    r.registered("b", 2).registered("a", 1)
    result = check_registry(r.events, r.inventory())
    assert result.verdict == "fail"
    text = "\n".join(result.evidence)
    assert "moved backwards" in text and "ends on v1" in text


def test_two_versions_for_one_run_id_fail() -> None:
    r = Registry().register("a", 1).claim("a", 2)
    result = check_registry(r.events, r.inventory())
    assert result.verdict == "fail"
    assert any("run a has 2 model versions" in line for line in result.evidence), result.evidence


def test_a_run_reported_as_two_versions_fails() -> None:
    r = Registry().register("a", 1).registered("a", 2)
    assert check_registry(r.events, r.inventory()).verdict == "fail"


def test_an_acknowledged_move_missing_from_the_store_is_a_lost_update() -> None:
    r = Registry().register("a", 1)
    r.claim("b", 2).move("b", 2).registered("b", 2)
    r.alias_writes.pop()  # the store never kept b's acknowledged write
    result = check_registry(r.events, r.inventory())
    assert result.verdict == "fail"
    assert any("acknowledged alias write" in line for line in result.evidence)


def test_an_overwritten_run_record_fails() -> None:
    r = Registry().register("a", 1)
    r.extra.append((f"{PREFIX}/runs/a.json", b"other"))
    assert check_registry(r.events, r.inventory()).verdict == "fail"


def test_an_alias_version_no_event_wrote_is_unknown_but_decoded_from_the_store() -> None:
    r = Registry().register("a", 1)
    r.claim("b", 2).move("b", 2, report=False).registered("b", 2)  # b's event was lost (pod killed)
    result = check_registry(r.events, r.inventory())
    assert result.verdict == "unknown"
    assert any(ALIAS_KEY in line and "(v2)" in line and "no alias_moved event" in line for line in result.evidence)


def test_unknown_without_inventory_versioning_or_registration() -> None:
    r = racing_correctly()
    assert check_registry(r.events, None).verdict == "unknown"
    assert check_registry(r.events, r.inventory(versioned=False)).verdict == "unknown"
    empty = Registry()
    result = check_registry(empty.events, empty.inventory())
    assert result.verdict == "unknown"
    assert "no registration happened" in result.evidence[-1]


def test_a_fail_needs_no_inventory() -> None:
    r = Registry().register("a", 1).registered("a", 2)
    assert check_registry(r.events, None).verdict == "fail"
