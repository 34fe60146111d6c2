"""Kubernetes resource quantities, the few forms pods use for CPU and memory."""

from __future__ import annotations

from harness.errors import HarnessError

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_DECIMAL = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def cpu_cores(quantity: str) -> float:
    """``"500m"`` → 0.5, ``"2"`` → 2.0."""
    text = str(quantity).strip()
    try:
        if text.endswith("m"):
            return float(text[:-1]) / 1000
        return float(text)
    except ValueError:
        raise HarnessError(f"CPU quantity {quantity!r} is not a number of cores or millicores (e.g. 500m)") from None


def memory_bytes(quantity: str) -> int:
    """``"512Mi"`` → 536870912, ``"1G"`` → 10**9, ``"1000"`` → 1000."""
    text = str(quantity).strip()
    for suffix, factor in (*_BINARY.items(), *_DECIMAL.items()):
        if text.endswith(suffix):
            try:
                return int(float(text[: -len(suffix)]) * factor)
            except ValueError:
                break
    try:
        return int(float(text))
    except ValueError:
        raise HarnessError(f"memory quantity {quantity!r} is not a byte count (e.g. 512Mi)") from None
