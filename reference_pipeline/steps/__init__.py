"""The pipeline steps, one module each, exposing ``run(ctx: Context) -> None``.

A step function does its work and returns, or raises an ``errors`` exception. It
prints ``step_skipped`` itself when its output already exists; ``__main__``
prints ``run_started`` and ``step_finished`` around it. Modules are imported on
demand so that steps without torch start in a fraction of the time.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from .context import Context

STEPS: tuple[str, ...] = ("ingest", "validate", "features", "train", "evaluate", "register")


def load(name: str) -> Callable[[Context], None]:
    """The ``run`` function of step ``name`` (one of ``STEPS``)."""
    run: Callable[[Context], None] = importlib.import_module(f"{__name__}.{name}").run
    return run


__all__ = ["STEPS", "Context", "load"]
