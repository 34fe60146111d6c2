"""Cluster options: the allowlist and the parsing of selectors and tolerations, without a cluster."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from harness.cluster.options import (
    ARGUMENTS,
    ClusterOptions,
    Toleration,
    check_context_allowed,
    options_from,
    parse_node_selector,
    parse_toleration,
)
from harness.errors import HarnessError


def test_a_context_must_be_allowed_by_flag_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HARNESS_ALLOWED_CONTEXTS", raising=False)
    with pytest.raises(HarnessError, match="'prod' is not on the allowlist .*--allow-context prod"):
        check_context_allowed(ClusterOptions(kind="existing", context="prod", allow_contexts=("staging",)))
    assert check_context_allowed(ClusterOptions(kind="existing", context="staging", allow_contexts=("staging",)))
    monkeypatch.setenv("HARNESS_ALLOWED_CONTEXTS", " staging-eu , staging-us")
    assert check_context_allowed(ClusterOptions(kind="existing", context="staging-us")) == "staging-us"
    with pytest.raises(HarnessError, match="allowed: staging-eu, staging-us"):
        check_context_allowed(ClusterOptions(kind="existing", context="staging"))


def test_existing_needs_a_context() -> None:
    with pytest.raises(HarnessError, match="--cluster existing needs --context"):
        ClusterOptions(kind="existing")


def test_node_selector_and_tolerations_parse_or_say_what_is_wrong() -> None:
    assert parse_node_selector("pool=chaos, zone=a") == {"pool": "chaos", "zone": "a"}
    assert parse_node_selector("") == {}
    with pytest.raises(HarnessError, match="'pool' is not KEY=VALUE"):
        parse_node_selector("pool")
    assert parse_toleration("nvidia.com/gpu:NoSchedule") == Toleration(key="nvidia.com/gpu", effect="NoSchedule")
    assert parse_toleration("spot=true:NoExecute") == Toleration(key="spot", value="true", effect="NoExecute")
    with pytest.raises(HarnessError, match="must be KEY\\[=VALUE\\]:EFFECT"):
        parse_toleration("spot=true:Sometimes")


def test_the_same_arguments_parse_for_argparse_and_become_options(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    for argument in ARGUMENTS:
        argument.add_to(parser.add_argument)
    args = parser.parse_args(["--cluster", "existing", "--context", "stg", "--allow-context", "stg",
                              "--allow-node-faults", "--node-selector", "pool=chaos", "--kubeconfig",
                              str(tmp_path / "kc"), "--toleration", "spot:NoSchedule"])
    options = options_from(vars(args))
    assert (options.kind, options.context, options.allow_contexts) == ("existing", "stg", ("stg",))
    assert options.allow_node_faults and not options.allow_cluster_scoped
    assert options.node_selector == {"pool": "chaos"} and options.kubeconfig == tmp_path / "kc"
    assert options.tolerations == (Toleration(key="spot", effect="NoSchedule"),)


def test_the_kubeconfig_defaults_to_the_first_kubeconfig_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", "/a/one:/b/two")
    assert ClusterOptions().resolved_kubeconfig() == Path("/a/one")
