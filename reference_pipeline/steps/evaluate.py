"""evaluate: AUC of the published model on the holdout hours, against AUC_GATE."""

from __future__ import annotations

import io
import json

import torch

from mlchaos_probe import events as probe
from mlchaos_probe.crash_points import crash_point

from .. import broken, data
from ..errors import GateFailed, UserError
from ..model import ModelSpec, auc, build, predict
from . import features
from .context import Context


def run(ctx: Context) -> None:
    """Write ``<run>/evaluation.json`` once; raise ``GateFailed`` if AUC < AUC_GATE.

    On a rerun the stored AUC is reported again and judged by the current gate.
    """
    c = ctx.config
    key = f"{c.run_prefix}/evaluation.json"
    stored = ctx.store.get(key)
    if stored is not None:
        ctx.skip("evaluation already written")
        value = float(json.loads(stored.body)["value"])
    else:
        value = _measure(ctx)
        report = {"metric": "auc", "value": value, "model_key": c.model_key}
        if ctx.store.publish(key, json.dumps(report).encode()):
            ctx.published("evaluation", key, f"evaluation/{c.run_id}")
        crash_point("evaluate.evaluation-published", run_id=c.run_id)
    passed = value >= c.auc_gate
    probe.evaluated(run_id=c.run_id, metric="auc", value=value, threshold=c.auc_gate, passed=passed)
    if not passed and broken.REGISTER_BELOW_GATE not in c.broken:
        raise GateFailed(f"AUC {value:.4f} on the holdout is below AUC_GATE={c.auc_gate}; the model is not registered")


def _measure(ctx: Context) -> float:
    c = ctx.config
    model_key = _latest_model_key(ctx) if broken.MIXED_LINEAGE in c.broken else c.model_key
    obj = ctx.store.get(model_key)
    if obj is None:
        raise UserError(f"model {model_key} is missing; run train first")
    probe.inputs_read(run_id=c.run_id, step_name=ctx.step_name, role="model", date=c.date,
                      data_version=c.data_version, keys=[model_key])
    saved = torch.load(io.BytesIO(obj.body), weights_only=True)
    model = build(ModelSpec(**saved["spec"]), saved["inputs"])
    model.load_state_dict(saved["state_dict"])
    _, (holdout_x, holdout_y) = data.split(features.load(ctx, role="holdout"))
    return auc(predict(model, holdout_x), holdout_y)


def _latest_model_key(ctx: Context) -> str:
    """Broken variant ``mixed-lineage``: the model of the registry's ``latest`` version (the run's own
    only while nothing is registered)."""
    c = ctx.config
    alias = ctx.store.get(f"{c.registry_prefix}/aliases/latest.json")
    if alias is None:
        return c.model_key
    version = int(json.loads(alias.body)["version"])
    record = ctx.store.get(f"{c.registry_prefix}/versions/{version:06d}.json")
    return c.model_key if record is None else str(json.loads(record.body)["model_key"])
