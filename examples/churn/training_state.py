"""Everything a training run needs to continue exactly where it stopped, as one torch.save-able dict.

``capture`` and ``apply`` are inverses: model, optimizer, LR scheduler, the torch/numpy/python (and
CUDA) RNG states, the data position and the step. Only tensors and plain values go in, so a checkpoint
loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mlchaos_probe import digest

FORMAT = 1


class Sampler:
    """Shuffled mini-batches, epoch after epoch, drawn with a generator of its own.

    Its position is (epoch, cursor, the generator's state when this epoch's order was drawn), so a
    restored sampler redraws the same order and continues at the same batch.
    """

    def __init__(self, rows: int, batch_size: int, seed: int) -> None:
        self._rows = rows
        self._batch = batch_size
        self._generator = torch.Generator().manual_seed(seed)
        self.epoch = 0
        self.cursor = 0
        self._drawn_from = self._generator.get_state()
        self._order = torch.randperm(rows, generator=self._generator)

    def next_indices(self) -> torch.Tensor:
        if self.cursor + self._batch > self._rows:  # the last partial batch of an epoch is dropped
            self.epoch += 1
            self.cursor = 0
            self._drawn_from = self._generator.get_state()
            self._order = torch.randperm(self._rows, generator=self._generator)
        indices = self._order[self.cursor : self.cursor + self._batch]
        self.cursor += self._batch
        return indices

    def position(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "cursor": self.cursor, "generator": self._drawn_from.clone()}

    def seek(self, position: dict[str, Any]) -> None:
        self.epoch = int(position["epoch"])
        self.cursor = int(position["cursor"])
        self._drawn_from = position["generator"].clone()
        self._generator.set_state(self._drawn_from)
        self._order = torch.randperm(self._rows, generator=self._generator)


@dataclass(frozen=True, kw_only=True)
class Trainer:
    """The live objects of one training run (what a checkpoint captures)."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    sampler: Sampler
    total_steps: int

    def capture(self, step: int) -> dict[str, Any]:
        """The full state after ``step`` steps (tensors are referenced: serialize it before training on)."""
        numpy_state = np.random.get_state(legacy=True)
        assert isinstance(numpy_state, tuple)  # legacy=True: the MT19937 tuple
        np_kind, np_key, np_pos, np_has_gauss, np_gauss = numpy_state
        return {
            "format": FORMAT,
            "step": step,
            "total_steps": self.total_steps,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if _cuda_in_use() else [],
                "numpy": [np_kind, torch.from_numpy(np_key.astype(np.int64)), np_pos, np_has_gauss, np_gauss],
                "python": random.getstate(),
            },
            "data_position": self.sampler.position(),
        }

    def apply(self, state: dict[str, Any]) -> int:
        """Load a captured state; returns its step. Raises ``ValueError`` for a state of another run shape."""
        if state.get("format") != FORMAT or state.get("total_steps") != self.total_steps:
            raise ValueError(f"checkpoint was written for {state.get('total_steps')} training steps, not "
                             f"{self.total_steps}; keep TRAIN_STEPS fixed within a run id")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        if rng["cuda"]:
            torch.cuda.set_rng_state_all(rng["cuda"])
        np_kind, np_key, np_pos, np_has_gauss, np_gauss = rng["numpy"]
        np.random.set_state((np_kind, np_key.numpy().astype(np.uint32), np_pos, np_has_gauss, np_gauss))
        random.setstate(rng["python"])
        self.sampler.seek(state["data_position"])
        return int(state["step"])

    def components(self) -> dict[str, str]:
        """Digest per state component, as the harness compares them with an uninterrupted run."""
        return digest.state_digests(model=self.model, optimizer=self.optimizer, scheduler=self.scheduler,
                                    rng=digest.rng_snapshot(), data_position=self.sampler.position())


def _cuda_in_use() -> bool:
    initialized: bool = torch.cuda.is_initialized()  # type: ignore[no-untyped-call]
    return initialized
