"""Digests: equal for equal state in any process, different when one value of the state changes."""

from __future__ import annotations

import hashlib
import io
import json
import random
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from mlchaos_probe import digest

ROOT = Path(__file__).resolve().parents[2]

# Builds a trained model, optimizer and scheduler from a fixed seed and prints their digests.
_SCRIPT = """
import json, random, sys
import numpy as np, torch
from mlchaos_probe import digest
torch.manual_seed(5); np.random.seed(5); random.seed(5)
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10)
for _ in range(3):
    optimizer.zero_grad()
    model(torch.randn(16, 4)).sum().backward()
    optimizer.step(); scheduler.step()
print(json.dumps(digest.state_digests(model=model, optimizer=optimizer, scheduler=scheduler,
                                      rng=digest.rng_snapshot(), data_position={"epoch": 0, "batch": 3})))
"""


def trained() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.ones(2, 3)).sum().backward()
    optimizer.step()
    return model, optimizer


def test_digests_are_equal_in_two_processes() -> None:
    runs = [subprocess.run([sys.executable, "-c", _SCRIPT], cwd=ROOT, capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": str(seed), "PATH": ""}) for seed in (1, 2)]
    first, second = (json.loads(run.stdout) for run in runs)
    assert first == second
    assert set(first) == {"parameters", "optimizer", "scheduler", "rng_torch", "rng_numpy", "rng_python",
                          "data_position"}


def test_one_changed_parameter_changes_the_parameters_digest() -> None:
    model, _ = trained()
    before = digest.params_sha256(model)
    assert digest.params_sha256(model) == before
    with torch.no_grad():
        model[1].bias[0] += 1e-6
    assert digest.params_sha256(model) != before


def test_params_sha256_hashes_the_raw_bytes_of_the_parameters_in_order() -> None:
    model, _ = trained()
    expected = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.parameters())).hexdigest()
    assert digest.params_sha256(model) == expected


def test_one_changed_optimizer_moment_changes_the_optimizer_digest() -> None:
    model, optimizer = trained()
    before = digest.state_digests(model=model, optimizer=optimizer)
    optimizer.state[model[0].weight]["exp_avg"][0, 0] += 1.0
    after = digest.state_digests(model=model, optimizer=optimizer)
    assert after["optimizer"] != before["optimizer"] and after["parameters"] == before["parameters"]


def test_a_consumed_random_number_changes_only_that_rng_digest() -> None:
    before = digest.state_digests(rng=digest.rng_snapshot())
    torch.rand(1)
    after = digest.state_digests(rng=digest.rng_snapshot())
    assert after["rng_torch"] != before["rng_torch"]
    assert {k: v for k, v in after.items() if k != "rng_torch"} == {k: v for k, v in before.items() if k != "rng_torch"}
    np.random.random()
    random.random()
    last = digest.state_digests(rng=digest.rng_snapshot())
    assert last["rng_numpy"] != after["rng_numpy"] and last["rng_python"] != after["rng_python"]


def test_a_state_restored_through_a_checkpoint_digests_the_same() -> None:
    model, optimizer = trained()
    saved = digest.state_digests(model=model, optimizer=optimizer)
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, buffer)
    state = torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
    torch.manual_seed(99)
    fresh = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 1))
    fresh_optimizer = torch.optim.AdamW(fresh.parameters(), lr=0.1)
    assert digest.state_digests(model=fresh, optimizer=fresh_optimizer) != saved
    fresh.load_state_dict(state["model"])
    fresh_optimizer.load_state_dict(state["optimizer"])
    assert digest.state_digests(model=fresh, optimizer=fresh_optimizer) == saved


@pytest.mark.parametrize(("one", "other"), [
    ([1, 2], [12]),
    (1, 1.0),
    (1, True),
    ("1", 1),
    ([1], (1,)),
    (None, ""),
    (b"a", "a"),
    (np.zeros(2, dtype=np.float32), np.zeros(2, dtype=np.int32)),
    (np.zeros((2, 2)), np.zeros(4)),
    (torch.zeros(2), torch.zeros(2, dtype=torch.float64)),
    ({"a": 1}, {"a": 2}),
])
def test_different_values_never_collide(one: object, other: object) -> None:
    assert digest.state_sha256(one) != digest.state_sha256(other)


def test_mapping_digests_ignore_insertion_order_and_take_mixed_keys() -> None:
    assert digest.state_sha256({"b": 1, 2: [0.5]}) == digest.state_sha256(OrderedDict([(2, [0.5]), ("b", 1)]))


def test_tensors_digest_by_value_on_any_layout() -> None:
    base = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    assert digest.state_sha256(base.t().contiguous().t()) == digest.state_sha256(base)
    ones, zeros = torch.ones(3, dtype=torch.bfloat16), torch.zeros(3, dtype=torch.bfloat16)
    assert digest.state_sha256(ones) != digest.state_sha256(zeros)


def test_an_unsupported_type_is_named() -> None:
    with pytest.raises(TypeError, match="set"):
        digest.state_sha256({1, 2})


def test_only_given_components_are_reported() -> None:
    assert set(digest.state_digests(data_position=0)) == {"data_position"}
    assert digest.state_digests() == {}
