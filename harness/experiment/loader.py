"""Load and validate an experiment file, with one-line errors that say how to fix it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from chaoslib.exceptions import ChaosException
from chaoslib.experiment import ensure_experiment_is_valid

from harness.checks.registry import CheckSpec, known_checks
from harness.checks.slo import parse_slos
from harness.errors import ExperimentError
from harness.experiment.model import EXTENSION_NAME, ExperimentSpec
from harness.workload.declaration import WorkloadError, load_workload
from harness.workload.reference import reference_workload
from harness.workload.role import Workload
from harness.workload.settings import PipelineSettings, check_params
from harness.yaml_file import YamlSyntaxError, read_yaml

# The harness's own run settings; any other key of extensions.harness.pipeline is the workload's.
_RUN_FIELDS = {f.name for f in fields(PipelineSettings)} - {"params"}


def load_experiment(path: Path, *, workload: Workload | None = None) -> ExperimentSpec:
    """Parse ``path`` (YAML or JSON), validate it as a Chaos Toolkit experiment
    (activities must resolve to importable functions with matching arguments)
    and read the harness extension. ``workload`` (from ``--pipeline``) overrides the
    experiment's own. Raises ``ExperimentError``."""
    return spec_from_document(_parse(path), path=path, workload=workload)


def spec_from_document(document: dict[str, Any], *, path: Path, workload: Workload | None = None) -> ExperimentSpec:
    """Validate an already parsed experiment; ``path`` names it in errors and gives its name."""
    try:
        # chaoslib logs each problem before raising; the raised message is what we report.
        logging.getLogger("chaostoolkit").disabled = True
        ensure_experiment_is_valid(document)
    except ChaosException as exc:
        raise ExperimentError(f"{path}: invalid experiment: {exc}") from None
    finally:
        logging.getLogger("chaostoolkit").disabled = False
    ext = _extension(path, document)
    chosen = workload or _workload(path, ext.get("workload"))
    return ExperimentSpec(
        path=path,
        name=path.stem,
        title=str(document.get("title", path.stem)),
        weight=_number(path, ext, "weight", 1.0),
        workload=chosen,
        pipeline=parse_pipeline(path, ext.get("pipeline", {}), chosen),
        checks=parse_checks(path, ext.get("checks"), has_slos=bool(ext.get("slos"))),
        slos=parse_slos(ext.get("slos"), source=str(path), metrics=chosen.facts().metrics),
        document=document,
    )


def _parse(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ExperimentError(f"{path}: no such experiment file")
    try:
        document = read_yaml(path)
    except YamlSyntaxError as exc:
        raise ExperimentError(str(exc)) from None
    if not isinstance(document, dict):
        raise ExperimentError(f"{path}: an experiment must be a mapping with title, method, ...; "
                              f"got {type(document).__name__}")
    return document


def _extension(path: Path, document: Mapping[str, Any]) -> Mapping[str, Any]:
    for ext in document.get("extensions") or []:
        if isinstance(ext, dict) and ext.get("name") == EXTENSION_NAME:
            return ext
    raise ExperimentError(
        f"{path}: no extensions entry named {EXTENSION_NAME!r}; add one with the checks to run "
        f"(known checks: {', '.join(known_checks())})"
    )


def _number(path: Path, block: Mapping[str, Any], key: str, default: float) -> float:
    value = block.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ExperimentError(f"{path}: {key} must be a non-negative number, got {value!r}")
    return float(value)


def parse_checks(path: Path, raw: Any, *, has_slos: bool) -> tuple[CheckSpec, ...]:
    if raw is None and has_slos:
        return ()
    if not isinstance(raw, list) or not raw:
        raise ExperimentError(
            f"{path}: extensions.harness.checks must be a non-empty list of {{name, weight}} (or declare slos)"
        )
    specs = []
    for item in raw:
        name = item.get("name") if isinstance(item, dict) else item
        if name not in known_checks():
            raise ExperimentError(f"{path}: unknown check {name!r}; known checks: {', '.join(known_checks())}")
        weight = _number(path, item, "weight", 1.0) if isinstance(item, dict) else 1.0
        options = {str(k): v for k, v in item.items() if k not in ("name", "weight")} if isinstance(item, dict) else {}
        odd = sorted(k for k, v in options.items() if not isinstance(v, (str, int, float, bool)))
        if odd:
            raise ExperimentError(f"{path}: check {name}: option(s) {', '.join(odd)} must be a string, number "
                                  "or boolean")
        specs.append(CheckSpec(name=str(name), weight=weight, options=options))
    return tuple(specs)


def _workload(path: Path, raw: Any) -> Workload:
    """The extension's ``workload`` (a pipeline.yaml, relative to the experiment), else the reference."""
    try:
        if raw is None:
            return reference_workload()
        if not isinstance(raw, str) or not raw:
            raise ExperimentError(f"{path}: extensions.harness.workload must be the path of a pipeline.yaml")
        return load_workload(path.parent / raw)
    except WorkloadError as exc:
        raise ExperimentError(f"{path}: {exc}") from None


def parse_pipeline(path: Path, raw: Any, workload: Workload) -> PipelineSettings:
    if not isinstance(raw, dict):
        raise ExperimentError(f"{path}: extensions.harness.pipeline must be a mapping")
    run = {k: v for k, v in raw.items() if k in _RUN_FIELDS}
    try:
        params = check_params(workload, {k: v for k, v in raw.items() if k not in _RUN_FIELDS}, source=str(path))
    except WorkloadError as exc:
        raise ExperimentError(f"{exc}; the harness's own settings are {', '.join(sorted(_RUN_FIELDS))}") from None
    defaults = PipelineSettings()
    for key, value in run.items():
        default = getattr(defaults, key)
        expected: tuple[type, ...] = (int,) if default is None else (type(default),)
        if expected == (float,):
            expected = (int, float)
        if isinstance(value, bool) or not isinstance(value, expected):
            raise ExperimentError(
                f"{path}: pipeline setting {key} must be {' or '.join(t.__name__ for t in expected)}, got {value!r}"
            )
    return PipelineSettings(**run, params=params)
