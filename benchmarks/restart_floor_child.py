"""The restart floor: a fresh process imports torch, loads a checkpoint and does one step.

Run by ``recovery.py`` as ``python restart_floor_child.py CHECKPOINT``; prints nothing.
"""

import sys

import torch

from reference_pipeline.model import SPECS, build

state = torch.load(sys.argv[1], weights_only=False)
spec = SPECS["small"]
model = build(spec, state["inputs"])
optimizer = torch.optim.AdamW(model.parameters(), lr=spec.learning_rate)
model.load_state_dict(state["model"])
optimizer.load_state_dict(state["optimizer"])
x = torch.randn(spec.batch_size, state["inputs"])
loss = model(x).square().mean()
loss.backward()
optimizer.step()
