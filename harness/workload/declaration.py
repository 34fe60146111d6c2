"""``pipeline.yaml``: a pipeline declared to the harness (format in the README, "Test your own pipeline").

:func:`load_workload` reads and validates a declaration; every problem is one
:class:`WorkloadError` line naming the file, the field and the fix.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, cast

from harness.errors import HarnessError
from harness.evidence.layout import ArtifactLayout, ArtifactRule, compile_rule
from harness.evidence.metric_names import METRIC_ROLES, MetricNames
from harness.evidence.workload_facts import WorkloadFacts
from harness.workload.role import SettingSpec, SettingType, SettingValue, StepTemplate
from harness.yaml_file import YamlSyntaxError, read_yaml

_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,28}[a-z0-9])?$")
_TYPES: dict[str, SettingType] = {"int": "int", "float": "float", "str": "str", "bool": "bool"}
_TOP = {"name", "version", "steps", "settings", "artifacts", "metrics"}
_STEP = {"name", "command", "env", "image", "after", "trains", "cpu_request", "cpu_limit"}
_RULE = {f.name for f in fields(ArtifactRule)}


class WorkloadError(HarnessError):
    """A pipeline declaration that cannot be used as written."""


@dataclass(frozen=True, kw_only=True)
class DeclaredWorkload:
    """A workload read from a ``pipeline.yaml`` (implements :class:`harness.workload.role.Workload`)."""

    path: Path
    name: str
    steps: tuple[StepTemplate, ...]
    train_step: str
    settings: Mapping[str, SettingSpec]
    layout: ArtifactLayout
    metrics: MetricNames = field(default_factory=MetricNames)
    version_files: tuple[str, ...] = ()

    def facts(self) -> WorkloadFacts:
        return WorkloadFacts(name=self.name, train_step=self.train_step, layout=self.layout, metrics=self.metrics)

    def version(self) -> str:
        """sha256 over the declaration and the files its ``version.files`` globs match (path and bytes)."""
        digest = hashlib.sha256(self.path.read_bytes())
        root = self.path.parent
        found = sorted({p for pattern in self.version_files for p in root.glob(pattern) if p.is_file()})
        for path in found:
            if "__pycache__" in path.parts:
                continue
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
        return digest.hexdigest()


def load_workload(path: Path) -> DeclaredWorkload:
    """Read and validate the declaration at ``path``."""
    path = path.resolve()
    if not path.is_file():
        raise WorkloadError(f"{path}: no such pipeline declaration; pass the path of a pipeline.yaml "
                            "(--pipeline FILE, make chaos PIPELINE=FILE)")
    try:
        raw = read_yaml(path)
    except YamlSyntaxError as exc:
        raise WorkloadError(str(exc)) from None
    doc = _mapping(path, raw, "the declaration", _TOP)
    name = doc.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise WorkloadError(f"{path}: name must be 1-30 characters of a-z, 0-9 and '-', got {name!r}")
    steps, train_step = _steps(path, doc.get("steps"))
    return DeclaredWorkload(
        path=path,
        name=name,
        steps=steps,
        train_step=train_step,
        settings=_settings(path, doc.get("settings") or {}),
        layout=_layout(path, doc.get("artifacts")),
        metrics=_metrics(path, doc.get("metrics") or {}),
        version_files=_version_files(path, doc.get("version") or {}),
    )


def _mapping(path: Path, raw: object, what: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(raw, dict):
        raise WorkloadError(f"{path}: {what} must be a mapping, got {type(raw).__name__}")
    unknown = sorted(str(k) for k in set(raw) - allowed)
    if unknown:
        raise WorkloadError(f"{path}: {what} has unknown key(s) {', '.join(unknown)}; "
                            f"known: {', '.join(sorted(allowed))}")
    return cast(Mapping[str, Any], raw)


def _strings(path: Path, raw: object, what: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(x, (str, int, float)) for x in raw):
        raise WorkloadError(f"{path}: {what} must be a list of strings, got {raw!r}")
    return tuple(str(x) for x in raw)


def _steps(path: Path, raw: object) -> tuple[tuple[StepTemplate, ...], str]:
    if not isinstance(raw, list) or not raw:
        raise WorkloadError(f"{path}: steps must be a non-empty list of {{name, command, ...}}")
    here = str(path.parent)
    steps: list[StepTemplate] = []
    trains: list[str] = []
    for n, item in enumerate(raw):
        step = _mapping(path, item, f"steps[{n}]", _STEP)
        name = step.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise WorkloadError(f"{path}: steps[{n}].name must be a-z, 0-9 and '-', got {name!r}")
        if any(s.name == name for s in steps):
            raise WorkloadError(f"{path}: two steps are named {name!r}; step names must be unique")
        command = _strings(path, step.get("command"), f"step {name}: command")
        if not command:
            raise WorkloadError(f"{path}: step {name}: command is empty; give the program and its arguments")
        env = step.get("env") or {}
        if not isinstance(env, dict):
            raise WorkloadError(f"{path}: step {name}: env must be a mapping of NAME: value")
        default_after = (steps[-1].name,) if steps else ()
        after = _strings(path, step["after"], f"step {name}: after") if "after" in step else default_after
        known = {s.name for s in steps}
        for before in after:
            if before not in known:
                raise WorkloadError(f"{path}: step {name} runs after {before!r}, which is not a step declared "
                                    "above it; list steps in an order that respects after")
        if step.get("trains"):
            trains.append(name)
        steps.append(StepTemplate(
            name=name,
            command=tuple(part.replace("{dir}", here) for part in command),
            env={str(k): str(v).replace("{dir}", here) for k, v in env.items()},
            image=str(step.get("image") or ""),
            after=after,
            cpu_request=str(step.get("cpu_request") or ""),
            cpu_limit=str(step.get("cpu_limit") or ""),
        ))
    if len(trains) != 1:
        raise WorkloadError(f"{path}: exactly one step must say trains: true (found {len(trains)}: "
                            f"{', '.join(trains) or 'none'}); faults aimed at training hit its pods")
    return tuple(steps), trains[0]


def _settings(path: Path, raw: object) -> dict[str, SettingSpec]:
    block = _mapping(path, raw, "settings", set(raw) if isinstance(raw, dict) else set())
    specs: dict[str, SettingSpec] = {}
    for name, item in block.items():
        entry = _mapping(path, item, f"settings.{name}", {"env", "type", "default"})
        env, kind = entry.get("env"), _TYPES.get(str(entry.get("type", "str")))
        if not isinstance(env, str) or not env:
            raise WorkloadError(f"{path}: settings.{name}.env must name the environment variable it sets")
        if kind is None:
            raise WorkloadError(f"{path}: settings.{name}.type must be one of {', '.join(_TYPES)}")
        default = entry.get("default")
        if default is not None:
            default = coerce_setting(SettingSpec(name=name, env=env, type=kind), default, source=str(path))
        specs[str(name)] = SettingSpec(name=str(name), env=env, type=kind, default=default)
    return specs


def coerce_setting(spec: SettingSpec, value: object, *, source: str) -> SettingValue:
    """``value`` as the type ``spec`` declares; a WorkloadError names the setting otherwise."""
    ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "str": isinstance(value, (str, int, float)) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
    }[spec.type]
    if not ok:
        raise WorkloadError(f"{source}: pipeline setting {spec.name} must be {spec.type}, got {value!r}")
    if spec.type == "float":
        return float(cast(float, value))
    if spec.type == "str":
        return str(value)
    return cast(SettingValue, value)


def _layout(path: Path, raw: object) -> ArtifactLayout:
    if not isinstance(raw, list) or not raw:
        raise WorkloadError(f"{path}: artifacts must be a non-empty list of rules {{name, pattern, logical, ...}}: "
                            "the duplicate check judges the keys they cover")
    rules = []
    for n, item in enumerate(raw):
        rule = _mapping(path, item, f"artifacts[{n}]", _RULE)
        try:
            rules.append(compile_rule(
                name=str(rule.get("name") or f"rule {n}"), pattern=str(rule.get("pattern") or ""),
                logical=str(rule.get("logical") or ""), part=str(rule.get("part") or "data"),
                mutable=bool(rule.get("mutable", False)), references=str(rule.get("references") or ""),
                logical_from=str(rule.get("logical_from") or "")))
        except ValueError as exc:
            raise WorkloadError(f"{path}: {exc}") from None
    return ArtifactLayout(rules=tuple(rules))


def _metrics(path: Path, raw: object) -> MetricNames:
    block = _mapping(path, raw, "metrics", set(METRIC_ROLES))
    for role, value in block.items():
        if not isinstance(value, str) or not re.match(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$", value):
            raise WorkloadError(f"{path}: metrics.{role} must be a Prometheus metric name, got {value!r}")
    return MetricNames(**{str(k): str(v) for k, v in block.items()})


def _version_files(path: Path, raw: object) -> tuple[str, ...]:
    block = _mapping(path, raw, "version", {"files"})
    return _strings(path, block.get("files", []), "version.files")
