"""evaluate: ROC AUC of the trained model on the holdout split, against a gate.

Writes ``<pipeline>/runs/<run>/evaluation.json`` once. Exit 3 when the model is below the gate, so
the run stops before publish: a model below the gate is never registered.
"""

from __future__ import annotations

import io
import json
import sys

import torch

import mlchaos_probe as probe

import features
import net
from runner import EXIT_FAILED, EXIT_GATE, EXIT_OK, Step, run

METRIC = "roc_auc"
GATE = 0.75


def roc_auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Probability that a random churner scores above a random non-churner (ties count half)."""
    positives, negatives = scores[labels > 0.5], scores[labels <= 0.5]
    if len(positives) == 0 or len(negatives) == 0:
        return 0.5
    above = (positives[:, None] > negatives[None, :]).sum() + 0.5 * (positives[:, None] == negatives[None, :]).sum()
    return float(above) / (len(positives) * len(negatives))


def evaluate(step: Step) -> int:
    c, keys, bucket = step.config, step.keys, step.bucket
    existing = bucket.get(keys.evaluation())
    if existing is not None:
        step.skip("evaluation already recorded")
        return EXIT_OK if json.loads(existing.body)["passed"] else EXIT_GATE
    weights, holdout = bucket.get(keys.trained_weights()), bucket.get(keys.features("holdout"))
    if weights is None or holdout is None:
        print(f"churn: {keys.trained_weights()} or the holdout features are missing; run prepare and train first",
              file=sys.stderr)
        return EXIT_FAILED
    trained = torch.load(io.BytesIO(weights.body), weights_only=True)
    model = net.build(int(trained["inputs"]))
    model.load_state_dict(trained["state_dict"])
    model.eval()
    x, y = features.from_bytes(holdout.body)
    with torch.no_grad():
        value = roc_auc(model(x).squeeze(1), y)
    passed = value >= GATE
    probe.evaluated(run_id=c.run_id, metric=METRIC, value=round(value, 6), threshold=GATE, passed=passed)
    record = {"run_id": c.run_id, "metric": METRIC, "value": value, "threshold": GATE, "passed": passed,
              "weights_key": keys.trained_weights(), "params_sha256": trained["params_sha256"]}
    if bucket.put_new(keys.evaluation(), json.dumps(record, sort_keys=True).encode()):
        step.wrote("evaluation", keys.evaluation(), f"evaluation/{c.run_id}")
    if not passed:
        print(f"churn: {METRIC} {value:.4f} is below the gate {GATE}; the model is not published", file=sys.stderr)
        return EXIT_GATE
    return EXIT_OK


if __name__ == "__main__":
    run("evaluate", evaluate)
