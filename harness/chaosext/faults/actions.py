"""Chaos Toolkit actions on the experiment's active faults (for methods and rollbacks)."""

from __future__ import annotations

from harness import runtime

__all__ = ["heal_faults"]


def heal_faults() -> list[str]:
    """Heal every fault still active (uncordon, clear proxy faults, ...); returns their ids.

    Idempotent: healing twice is harmless. The harness also heals everything when the experiment ends.
    """
    return runtime.current().faults.heal()
