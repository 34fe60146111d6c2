"""The layer contracts of pyproject.toml hold for the code, and each of them can fail.

``lint-imports`` checks the contracts of ``[tool.importlinter]``; the planted tests run the same
contracts against a small package tree in a temporary folder, once clean and once with one
forbidden import each, so a contract that no longer matches its modules shows up here. The
examples' import check (``tools/check_example_imports.py``) is tested the same way.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

# The smallest tree that holds every module a contract names, plus the one allowed pytest import.
_CLEAN_TREE = {
    "harness/__init__.py": "",
    "harness/checks/__init__.py": "",
    "harness/checks/verdict.py": "import harness.history\n",
    "harness/history/__init__.py": "",
    "harness/cluster/__init__.py": "",
    "harness/services/__init__.py": "",
    "harness/faults/__init__.py": "import harness.cluster\n",
    "harness/workload/__init__.py": "import harness.cluster\n",
    "harness/report/__init__.py": "",
    "harness/pytest_plugin.py": "import pytest\nimport harness.checks\n",
    "reference_pipeline/__init__.py": "import mlchaos_probe\n",
    "mlchaos_probe/__init__.py": "import json\n",
    "harness/environment.py": "import harness.cluster\n",
    "harness/environments/__init__.py": "import harness.cluster\n",
    "harness/gameday/__init__.py": "",
    "harness/gameday/model.py": "",
    "harness/gameday/generators.py": "import harness.gameday.model\n",
    "harness/gameday/schedule_file.py": "import harness.gameday.model\n",
    "harness/gameday/figures.py": "import harness.checks.verdict\n",
    "harness/gameday/trend.py": "import harness.gameday.model\n",
    "harness/gameday/summary_file.py": "import harness.gameday.model\n",
    "harness/gameday/night.py": "import harness.faults\nimport harness.gameday.generators\n",
}

# (module to add, its import, words of the contract that must break)
_PLANTED = [
    ("harness/checks/planted.py", "import harness.services", "checks read the history"),
    ("harness/checks/planted.py", "from harness.cluster import planted", "checks read the history"),
    ("harness/cluster/planted.py", "import harness.faults", "the cluster knows nothing"),
    ("harness/cluster/planted.py", "import harness.checks.verdict", "the cluster knows nothing"),
    ("harness/cluster/planted.py", "from harness import workload", "the cluster knows nothing"),
    ("reference_pipeline/planted.py", "import harness.history", "the reference pipeline"),
    ("mlchaos_probe/planted.py", "import harness", "the probe library"),
    ("mlchaos_probe/planted.py", "import reference_pipeline", "the probe library"),
    ("harness/report/planted.py", "import pytest", "the core works without pytest"),
    ("harness/gameday/generators.py", "import harness.faults", "game days: schedules, figures"),
    ("harness/gameday/figures.py", "import harness.services", "game days: schedules, figures"),
    ("harness/gameday/trend.py", "from harness import environment", "game days: schedules, figures"),
    ("harness/report/planted.py", "from _pytest.fixtures import fixture", "the core works without pytest"),
]


def _toml_value(value: object) -> str:
    """TOML for the strings, booleans and lists of strings an import-linter section holds."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)  # a JSON string or list of strings is a TOML basic string or array


def _project_contracts_toml() -> str:
    """The project's ``[tool.importlinter]`` section, rewritten as a config file of its own."""
    section = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    lines = ["[tool.importlinter]"]
    lines += [f"{key} = {_toml_value(value)}" for key, value in section.items() if key != "contracts"]
    for contract in section["contracts"]:
        lines += ["", "[[tool.importlinter.contracts]]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in contract.items()]
    return "\n".join(lines) + "\n"


def _lint_imports(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # The root packages are found on PYTHONPATH: the tree under test, not the installed harness.
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([str(LINT_IMPORTS), "--no-logo", "--no-cache", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def _tree(root: Path, extra: dict[str, str]) -> Path:
    for name, text in {**_CLEAN_TREE, **extra}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    config = root / "contracts.toml"
    config.write_text(_project_contracts_toml(), encoding="utf-8")
    return config


def test_the_code_keeps_every_layer_contract() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, f"lint-imports found broken layer contracts:\n{result.stdout}{result.stderr}"


def test_the_contracts_pass_a_tree_that_keeps_them(tmp_path: Path) -> None:
    config = _tree(tmp_path, {})
    result = _lint_imports(tmp_path, "--config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("module", "statement", "contract"), _PLANTED)
def test_a_planted_forbidden_import_breaks_its_contract(tmp_path: Path, module: str, statement: str,
                                                        contract: str) -> None:
    config = _tree(tmp_path, {module: statement + "\n"})
    result = _lint_imports(tmp_path, "--config", str(config))
    assert result.returncode == 1, result.stdout + result.stderr
    broken = [line for line in result.stdout.splitlines() if " BROKEN" in line]
    assert len(broken) == 1 and broken[0].startswith(contract), result.stdout


def _example_checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_example_imports", ROOT / "tools/check_example_imports.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_the_examples_import_neither_the_harness_nor_the_reference_pipeline() -> None:
    assert _example_checker().main([str(ROOT / "examples")]) == 0


@pytest.mark.parametrize(("source", "forbidden"), [
    ("import json\nimport mlchaos_probe\nfrom mlchaos_probe import events\nfrom . import harness\n", []),
    ("import harness\n", ["harness"]),
    ("import os\n\ndef f() -> None:\n    from harness.checks import verdict\n", ["harness.checks"]),
    ("from reference_pipeline.steps import train\nimport harnessed\n", ["reference_pipeline.steps"]),
])
def test_the_example_check_finds_every_forbidden_import(tmp_path: Path, source: str, forbidden: list[str]) -> None:
    checker = _example_checker()
    example = tmp_path / "examples" / "train.py"
    example.parent.mkdir()
    example.write_text(source, encoding="utf-8")
    assert [bad.module for bad in checker.forbidden_imports(example)] == forbidden
    assert checker.main([str(tmp_path / "examples")]) == (1 if forbidden else 0)


def test_the_example_check_refuses_a_missing_folder(tmp_path: Path) -> None:
    assert _example_checker().main([str(tmp_path / "absent")]) == 2
