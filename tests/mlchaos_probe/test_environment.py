"""The environment fingerprint: stable for one environment, different when a detail differs."""

from __future__ import annotations

import pytest

from mlchaos_probe import environment


def test_fingerprint_is_stable_and_covers_the_basic_details() -> None:
    first, details = environment.fingerprint()
    second, _ = environment.fingerprint()
    assert first == second and len(first) == 64
    assert {"python", "machine", "numpy", "torch"} <= set(details)


def test_a_changed_detail_changes_the_fingerprint(monkeypatch: pytest.MonkeyPatch) -> None:
    plain, _ = environment.fingerprint()
    assert environment.fingerprint({"device": "cpu"})[0] not in (plain, environment.fingerprint({"device": "cuda"})[0])
    monkeypatch.setenv("IMAGE_DIGEST", "sha256:abc")
    with_image, details = environment.fingerprint()
    assert details["image_digest"] == "sha256:abc" and with_image != plain


def test_torch_settings_are_reported_once_torch_is_imported() -> None:
    import torch

    before = torch.are_deterministic_algorithms_enabled()
    try:
        torch.use_deterministic_algorithms(True)
        on, details = environment.fingerprint()
        torch.use_deterministic_algorithms(False)
        off, _ = environment.fingerprint()
    finally:
        torch.use_deterministic_algorithms(before)
    assert details["torch_deterministic_algorithms"] == "True" and "torch_float32_matmul_precision" in details
    assert on != off
