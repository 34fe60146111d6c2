"""publish: the model, once, then its registry version; the run's last step.

The model goes to ``<pipeline>/models/<run>/model.pt`` with ``If-None-Match: *``, so a retried or
concurrent publish keeps the first copy; the registry then gets one version for the run
(registry.py). Sets the run's duration metric and lingers so the last scrape sees it.

CARELESS=1 ships the classic bug instead: the model is published to the one path serving loads
(``<pipeline>/models/current/model.pt``) with a plain ``put_object`` and no precondition, so every
publish (the next daily run, a backfill of an older date, a retry) silently overwrites the model
that was there.
"""

from __future__ import annotations

import io
import json
import sys
import time

import torch

import mlchaos_probe as probe

import registry
from runner import EXIT_FAILED, EXIT_GATE, EXIT_OK, Step, run


def publish(step: Step) -> int:
    try:
        return _publish(step)
    finally:
        c = step.config
        if c.run_started_at is not None:
            step.metrics.run_duration(time.time() - c.run_started_at)
        step.metrics.linger()


def _publish(step: Step) -> int:
    c, keys, bucket = step.config, step.keys, step.bucket
    model_key = keys.serving_model() if c.careless else keys.model()
    if not c.careless and bucket.exists(model_key) and registry.find(bucket, keys, c.run_id) is not None:
        step.skip("model already published and registered")
        return EXIT_OK
    evaluation, weights = bucket.get(keys.evaluation()), bucket.get(keys.trained_weights())
    if evaluation is None or weights is None:
        print("churn: no evaluation or trained weights for this run; run train and evaluate first", file=sys.stderr)
        return EXIT_FAILED
    verdict = json.loads(evaluation.body)
    if not verdict["passed"]:
        print(f"churn: the model did not pass the evaluation gate ({verdict['value']:.4f} < {verdict['threshold']}); "
              "not publishing it", file=sys.stderr)
        return EXIT_GATE
    trained = torch.load(io.BytesIO(weights.body), weights_only=True)
    buffer = io.BytesIO()
    torch.save({**trained, "evaluation": {"metric": verdict["metric"], "value": verdict["value"]}}, buffer)
    if c.careless:
        bucket.put(model_key, buffer.getvalue())  # CARELESS: overwrites whatever model was there
        step.wrote("model", model_key, f"model/{c.run_id}")
    elif bucket.put_new(model_key, buffer.getvalue()):
        step.wrote("model", model_key, f"model/{c.run_id}")
    version, created = registry.register(bucket, keys, registry.Entry(
        run_id=c.run_id, model_key=model_key, params_sha256=str(trained["params_sha256"]),
        metric=str(verdict["metric"]), value=float(verdict["value"])))
    if created:
        step.wrote("model_version", keys.registry_version(version), f"model_version/{c.run_id}")
    probe.model_registered(run_id=c.run_id, version=version, created=created)
    return EXIT_OK


if __name__ == "__main__":
    run("publish", publish)
