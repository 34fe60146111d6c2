"""Numeric settings a step process takes from its image's environment (part of its environment fingerprint)."""

from __future__ import annotations

import os
import sys

from .errors import UserError

PRECISIONS = ("highest", "high", "medium")


def apply_matmul_precision() -> str:
    """Apply ``$TORCH_MATMUL_PRECISION`` (``highest``, the default, ``high`` or ``medium``) through
    ``torch.set_float32_matmul_precision`` when torch is imported; returns the value applied ("" when
    torch is not imported). Lower precisions let float32 matmuls use TF32/bfloat16 where the hardware
    has them: a real numeric change, so it is part of the environment fingerprint."""
    value = os.environ.get("TORCH_MATMUL_PRECISION", "") or "highest"
    if value not in PRECISIONS:
        raise UserError(f"TORCH_MATMUL_PRECISION={value!r} is invalid; set it to one of {', '.join(PRECISIONS)}")
    torch = sys.modules.get("torch")
    if torch is None:
        return ""
    torch.set_float32_matmul_precision(value)
    return value
