"""The fingerprint of a step process's environment: what must match for two runs to be comparable.

Library versions are read from the installed distributions' metadata, so fingerprinting never imports torch
or numpy; torch's runtime settings are reported only when the process has imported torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from collections.abc import Mapping
from importlib import metadata

from . import events

_LIBRARIES = ("torch", "numpy")


def fingerprint(extra: Mapping[str, str] | None = None) -> tuple[str, dict[str, str]]:
    """``(sha256 of the details' sorted JSON, details)``.

    Details: ``python``; ``torch`` and ``numpy`` versions when installed; ``machine``; when torch is imported,
    ``torch_deterministic_algorithms`` and ``torch_float32_matmul_precision``; ``image_digest`` when
    $IMAGE_DIGEST is set; then ``extra`` (which may override any of them).
    """
    details: dict[str, str] = {"python": platform.python_version(), "machine": platform.machine()}
    for library in _LIBRARIES:
        try:
            details[library] = metadata.version(library)
        except metadata.PackageNotFoundError:
            pass
    torch_module = sys.modules.get("torch")
    if torch_module is not None:
        details["torch_deterministic_algorithms"] = str(torch_module.are_deterministic_algorithms_enabled())
        details["torch_float32_matmul_precision"] = str(torch_module.get_float32_matmul_precision())
    image = os.environ.get("IMAGE_DIGEST", "")
    if image:
        details["image_digest"] = image
    details.update({str(key): str(value) for key, value in (extra or {}).items()})
    encoded = json.dumps(details, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest(), details


def report(*, run_id: str, extra: Mapping[str, str] | None = None) -> str:
    """Print the ``environment`` event of this process (once, at its start); returns the fingerprint."""
    digest, details = fingerprint(extra)
    events.environment(run_id=run_id, fingerprint=digest, details=details)
    return digest
