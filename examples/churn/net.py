"""The churn classifier and the switches that make its training reproducible bit for bit."""

from __future__ import annotations

import os

import torch

HIDDEN = 256
DROPOUT = 0.1
BATCH_SIZE = 1024


def deterministic(device_name: str) -> torch.device:
    """Turn off every source of run-to-run nondeterminism; returns the device to train on."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before cuBLAS's first use
    torch.use_deterministic_algorithms(True)
    # Reductions are split per thread: one thread gives the same sums on any core count.
    torch.set_num_threads(1)
    device = torch.device(device_name)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    return device


def build(inputs: int) -> torch.nn.Sequential:
    return torch.nn.Sequential(
        torch.nn.Linear(inputs, HIDDEN), torch.nn.ReLU(), torch.nn.Dropout(DROPOUT),
        torch.nn.Linear(HIDDEN, HIDDEN), torch.nn.ReLU(), torch.nn.Dropout(DROPOUT),
        torch.nn.Linear(HIDDEN, 1),
    )
