"""The probe is light and stands alone: importing it loads no heavy library, the harness or the reference."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "numpy", "prometheus_client", "harness", "reference_pipeline")


def loaded_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nimport json; print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return set(json.loads(out))


def test_importing_the_probe_loads_nothing_heavy() -> None:
    loaded = loaded_after("import mlchaos_probe\nfrom mlchaos_probe import digest, environment, events")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_the_metrics_module_loads_prometheus_client_only() -> None:
    loaded = loaded_after("import mlchaos_probe as probe\nprobe.metrics.PipelineMetrics")
    assert "prometheus_client" in loaded and not loaded & {"torch", "numpy", "harness", "reference_pipeline"}
