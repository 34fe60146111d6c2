"""mlchaos_probe: what a training pipeline prints and serves so the chaos harness can judge it.

Standalone (it never imports the harness) and light: importing it loads only the standard library. The event
functions are re-exported here (``import mlchaos_probe as probe; probe.train_step(...)``), all but two: the
``crash_point`` event (the harness's; a pipeline marks its crash points with
``mlchaos_probe.crash_points.crash_point``) and the ``environment`` event: ``probe.environment`` is the
submodule (as ``from mlchaos_probe import environment`` must give), whose ``report(run_id=...)`` fingerprints
and prints that event; ``events.environment`` prints it from given values. ``digest`` and ``metrics`` (which
imports prometheus_client) load on first use.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from . import environment, events
from .events import (
    alias_moved,
    artifact_written,
    checkpoint_rejected,
    checkpoint_restored,
    checkpoint_saved,
    digest_trail,
    emit,
    environment_refused,
    evaluated,
    inputs_read,
    inputs_waiting,
    model_registered,
    register_kind,
    run_started,
    sigterm_received,
    step_finished,
    step_skipped,
    train_step,
    training_completed,
    training_started,
)

_LAZY_SUBMODULES = frozenset({"digest", "metrics"})


def __getattr__(name: str) -> ModuleType:
    # Lazy submodules: `probe.digest` works after a plain `import mlchaos_probe` without loading
    # prometheus_client for pipelines that never serve metrics.
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "emit",
    "register_kind",
    "run_started",
    "step_finished",
    "step_skipped",
    "training_started",
    "train_step",
    "checkpoint_saved",
    "checkpoint_restored",
    "sigterm_received",
    "training_completed",
    "artifact_written",
    "evaluated",
    "model_registered",
    "digest_trail",
    "checkpoint_rejected",
    "environment_refused",
    "alias_moved",
    "inputs_read",
    "inputs_waiting",
    "environment",
    "events",
]
