"""evaluate: AUC of the published model on the holdout hours, against AUC_GATE."""

from __future__ import annotations

import io
import json

import torch

from mlchaos_probe import events as probe

from .. import data
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
    passed = value >= c.auc_gate
    probe.evaluated(run_id=c.run_id, metric="auc", value=value, threshold=c.auc_gate, passed=passed)
    if not passed:
        raise GateFailed(f"AUC {value:.4f} on the holdout is below AUC_GATE={c.auc_gate}; the model is not registered")


def _measure(ctx: Context) -> float:
    obj = ctx.store.get(ctx.config.model_key)
    if obj is None:
        raise UserError(f"model {ctx.config.model_key} is missing; run train first")
    saved = torch.load(io.BytesIO(obj.body), weights_only=True)
    model = build(ModelSpec(**saved["spec"]), saved["inputs"])
    model.load_state_dict(saved["state_dict"])
    _, (holdout_x, holdout_y) = data.split(features.load(ctx))
    return auc(predict(model, holdout_x), holdout_y)
