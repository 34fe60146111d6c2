"""PipelineMetrics: no-ops without a port, the standard series served with one."""

from __future__ import annotations

import socket
import urllib.request

import pytest

from harness.lifecycle import free_port
from mlchaos_probe.metrics import PipelineMetrics


def exercise(metrics: PipelineMetrics) -> None:
    metrics.step_done(7)
    metrics.checkpoint_saved(0.2)
    metrics.checkpoint_restored(0.3)
    metrics.checkpoint_failed()
    metrics.s3_retries(2)
    metrics.s3_retries(0)
    metrics.step_duration("train", 12.5)
    metrics.run_duration(99.0)


def test_without_a_port_calls_work_and_nothing_is_served() -> None:
    metrics = PipelineMetrics(pipeline="p", run_id="r", kind="daily")
    exercise(metrics)
    metrics.linger()  # no port: returns at once whatever METRICS_LINGER_SECONDS says
    assert metrics.port is None
    assert metrics.registry.get_sample_value("pipeline_train_step", {"pipeline": "p", "run_id": "r",
                                                                     "kind": "daily"}) == 7


def test_with_a_port_the_standard_series_are_served_with_the_run_labels() -> None:
    port = free_port()
    metrics = PipelineMetrics(pipeline="p", run_id="r", kind="backfill", port=port, addr="127.0.0.1")
    exercise(metrics)
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    labels = 'kind="backfill",pipeline="p",run_id="r"'
    for line in (f"pipeline_train_step{{{labels}}} 7.0", f"pipeline_train_steps_total{{{labels}}} 1.0",
                 f"pipeline_checkpoint_failures_total{{{labels}}} 1.0", f"pipeline_s3_retries_total{{{labels}}} 2.0",
                 f"pipeline_run_duration_seconds{{{labels}}} 99.0",
                 f'pipeline_step_duration_seconds{{{labels},step="train"}} 12.5',
                 f"pipeline_checkpoint_save_seconds_count{{{labels}}} 1.0",
                 f"pipeline_checkpoint_restore_seconds_count{{{labels}}} 1.0"):
        assert line in body, line
    assert f"pipeline_last_step_timestamp_seconds{{{labels}}}" in body


def test_from_env_reads_the_harness_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    for name, value in {"PIPELINE_NAME": "churn", "RUN_ID": "daily-x", "RUN_KIND": "daily",
                        "METRICS_PORT": str(port), "POD_IP": "127.0.0.1"}.items():
        monkeypatch.setenv(name, value)
    metrics = PipelineMetrics.from_env(step_name="train")
    metrics.step_done(1)
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    assert 'pipeline_train_step{kind="daily",pipeline="churn",run_id="daily-x"} 1.0' in body


def test_a_bad_or_taken_port_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICS_PORT", "eighty")
    with pytest.raises(ValueError, match="METRICS_PORT"):
        PipelineMetrics.from_env(step_name="train")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"127.0.0.1:{port}"):
            PipelineMetrics(pipeline="p", run_id="r", kind="daily", port=port, addr="127.0.0.1")
