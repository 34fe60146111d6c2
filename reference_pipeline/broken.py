"""Deliberately broken variants, for testing that the harness catches them.

``PIPELINE_BROKEN`` holds a comma-separated subset of ``VARIANTS``; empty means the
correct pipeline. Each variant changes exactly one behaviour and is checked only
at the one place it affects.
"""

from __future__ import annotations

from .errors import UserError

IGNORE_CHECKPOINT = "ignore-checkpoint"

VARIANTS: dict[str, str] = {
    IGNORE_CHECKPOINT: "train never restores a checkpoint and always starts from step 0",
}


def parse(value: str) -> frozenset[str]:
    """The set of variant names in ``value``; raises ``UserError`` on an unknown name."""
    names = frozenset(n.strip() for n in value.split(",") if n.strip())
    unknown = sorted(names - VARIANTS.keys())
    if unknown:
        raise UserError(
            f"PIPELINE_BROKEN names unknown variant(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(VARIANTS))} (leave it empty for the correct pipeline)"
        )
    return names
