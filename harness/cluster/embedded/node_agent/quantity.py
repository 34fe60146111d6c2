"""Kubernetes CPU quantities, in the forms pods use."""

from __future__ import annotations

from harness.errors import HarnessError


def cpu_cores(quantity: str) -> float:
    """``"500m"`` → 0.5, ``"2"`` → 2.0."""
    text = str(quantity).strip()
    try:
        if text.endswith("m"):
            return float(text[:-1]) / 1000
        return float(text)
    except ValueError:
        raise HarnessError(f"CPU quantity {quantity!r} is not a number of cores or millicores (e.g. 500m)") from None

