"""Synthetic churn data: a pure function of (partition date, seed), so every attempt and every
backfill of a date computes the same bytes."""

from __future__ import annotations

import hashlib
import io

import torch

FEATURES = 24
ROWS = {"train": 16384, "holdout": 4096}
SPLITS = tuple(ROWS)


def generate(date: str, seed: int) -> dict[str, dict[str, torch.Tensor]]:
    """Per split: ``x`` (rows x FEATURES, float32) and ``y`` (rows, float32 0/1: churned)."""
    digest = hashlib.sha256(f"churn/{date}/{seed}".encode()).digest()
    generator = torch.Generator().manual_seed(int.from_bytes(digest[:8], "big") >> 1)
    # A hidden "customer behaviour" model the classifier has to learn: a nonlinear score plus one
    # interaction (short tenure x many support tickets) and noise.
    hidden = torch.randn(FEATURES, 8, generator=generator)
    readout = torch.randn(8, generator=generator)
    out: dict[str, dict[str, torch.Tensor]] = {}
    for split in SPLITS:
        x = torch.randn(ROWS[split], FEATURES, generator=generator)
        noise = 0.3 * torch.randn(ROWS[split], generator=generator)
        score = torch.tanh(x @ hidden / 3.0) @ readout + 0.8 * x[:, 0] * x[:, 1] + noise
        out[split] = {"x": x.contiguous(), "y": (score > 0).to(torch.float32)}
    return out


def to_bytes(split: dict[str, torch.Tensor]) -> bytes:
    buffer = io.BytesIO()
    torch.save(split, buffer)
    return buffer.getvalue()


def from_bytes(body: bytes) -> tuple[torch.Tensor, torch.Tensor]:
    split = torch.load(io.BytesIO(body), weights_only=True)
    return split["x"], split["y"]
