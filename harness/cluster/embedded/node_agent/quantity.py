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



_MEMORY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
                    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}


def memory_bytes(quantity: str) -> int:
    """``"512Mi"`` → 536870912, ``"1G"`` → 10**9, ``"1000"`` → 1000 (Kubernetes memory quantities)."""
    text = str(quantity).strip()
    for suffix in sorted(_MEMORY_SUFFIXES, key=len, reverse=True):
        if text.endswith(suffix):
            number, scale = text[: -len(suffix)], _MEMORY_SUFFIXES[suffix]
            break
    else:
        number, scale = text, 1
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if not value > 0 or value * scale > 2**63:
        raise HarnessError(f"memory quantity {quantity!r} is not a positive amount of bytes (e.g. 512Mi, 1G)")
    return int(value * scale)
