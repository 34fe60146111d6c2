"""Chaos Toolkit activities outside an experiment, and their argument checks."""

from __future__ import annotations

import pytest

from harness.chaosext.pipeline.actions import start_pipeline_run
from harness.chaosext.pod.actions import parse_selector, terminate_pods
from harness.errors import HarnessError


def test_activities_outside_an_experiment_say_how_to_run_one():
    with pytest.raises(HarnessError, match="no harness experiment is active"):
        terminate_pods()


def test_bad_arguments_are_rejected_before_acting():
    with pytest.raises(ValueError, match="grace_period_seconds"):
        terminate_pods(grace_period_seconds=-1)
    with pytest.raises(ValueError, match="kind must be"):
        start_pipeline_run(kind="hourly")
    with pytest.raises(ValueError, match="key=value"):
        parse_selector("step")


def test_selector_parsing():
    assert parse_selector("step=train, kind=daily") == {"step": "train", "kind": "daily"}
