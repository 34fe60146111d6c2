"""What the uninterrupted run with the same settings computed: the yardstick of the resume check."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class ReferenceRun:
    """The final parameter digest of an uninterrupted run, and its digest trail
    (training step -> state component -> sha256), from its ``digest_trail`` events."""

    params_sha256: str
    trail: Mapping[int, Mapping[str, str]] = field(default_factory=dict)
