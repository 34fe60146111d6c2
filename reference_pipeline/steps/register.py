"""register: one model version per run id, and the ``latest`` alias moved to it."""

from __future__ import annotations

import json
import time

from mlchaos_probe import events as probe

from .. import broken
from ..errors import GateFailed, UserError
from ..registry import Registry
from .context import Context


def run(ctx: Context) -> None:
    """Register the run's model if its evaluation passed; then set the run-duration metric."""
    c = ctx.config
    evaluation = ctx.store.get(f"{c.run_prefix}/evaluation.json")
    if evaluation is None:
        raise UserError(f"{c.run_prefix}/evaluation.json is missing; run evaluate first")
    value = float(json.loads(evaluation.body)["value"])
    if value < c.auc_gate and broken.REGISTER_BELOW_GATE not in c.broken:
        raise GateFailed(f"AUC {value:.4f} is below AUC_GATE={c.auc_gate}; refusing to register the model")
    registry = Registry(c, ctx.store)
    version, created = registry.register()
    if created:
        ctx.published("model_version", registry.version_key(version), f"model_version/{c.run_id}")
    else:
        ctx.skip(f"run already registered as version {version}")
    probe.model_registered(run_id=c.run_id, version=version, created=created)
    record = ctx.store.get(registry.version_key(version))
    model_key = json.loads(record.body).get("model_key") if record is not None else None
    if model_key is not None:  # the lineage: which model the run's version points at (none: not reported)
        probe.inputs_read(run_id=c.run_id, step_name=ctx.step_name, role="model", date=c.date,
                          data_version=c.data_version, keys=[str(model_key)])
    if c.run_started_at is not None:
        ctx.metrics.run_duration(time.time() - c.run_started_at)
