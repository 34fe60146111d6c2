"""The model and the AUC metric."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class ModelSpec:
    """Architecture and batch size of one ``MODEL_SIZE``."""

    hidden: int
    layers: int
    batch_size: int
    learning_rate: float


SPECS: dict[str, ModelSpec] = {
    # About 20 ms per step on one CPU thread: long enough that steps, not process
    # start-up, dominate a run; short enough to train in about 25 s.
    "small": ModelSpec(hidden=512, layers=2, batch_size=512, learning_rate=1e-3),
    # Meant to keep a GPU busy: about 12.7M parameters (a ~150 MB checkpoint with
    # AdamW state, still cheap to upload), about 1.2 TFLOP per step.
    "large": ModelSpec(hidden=2048, layers=4, batch_size=16384, learning_rate=3e-4),
}


def build(spec: ModelSpec, inputs: int) -> nn.Module:
    """An MLP with dropout (so the torch RNG state matters for exact resumption)."""
    modules: list[nn.Module] = []
    width = inputs
    for _ in range(spec.layers):
        modules += [nn.Linear(width, spec.hidden), nn.ReLU(), nn.Dropout(0.1)]
        width = spec.hidden
    modules.append(nn.Linear(width, 1))
    return nn.Sequential(*modules)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum (Mann-Whitney U) formula, ties averaged."""
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    start = 0
    while start < len(scores):  # average the ranks of each run of equal scores
        end = start
        while end + 1 < len(scores) and sorted_scores[end + 1] == sorted_scores[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    positives = labels == 1
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs both positive and negative labels")
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def predict(model: nn.Module, features: np.ndarray) -> np.ndarray:
    """Scores (logits) for ``features``, in evaluation mode."""
    model.eval()
    with torch.no_grad():
        scores: np.ndarray = model(torch.from_numpy(features)).squeeze(1).numpy().astype(np.float64)
    return scores
