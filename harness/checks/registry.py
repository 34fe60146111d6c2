"""The checks an experiment can name, and their evaluation.

Every check has one signature: ``(evidence, params) -> CheckResult``, a pure
function of what the run left behind (:class:`~harness.evidence.run.RunEvidence`)
and the experiment's options for it. Checks register with the :func:`check`
decorator; a user's package adds its own without editing the harness, either by
being imported or through the ``mlchaos.checks`` entry-point group (each entry
point names a module, imported once when checks are first looked up).
"""

from __future__ import annotations

import functools
import importlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points

from harness.checks.verdict import CheckResult, safe
from harness.errors import ExperimentError
from harness.evidence.run import RunEvidence

ENTRY_POINT_GROUP = "mlchaos.checks"

ParamValue = str | int | float | bool


@dataclass(frozen=True, kw_only=True)
class CheckParams:
    """The experiment's options for one check: its weight and any extra keys of its entry."""

    weight: float = 1.0
    options: Mapping[str, ParamValue] = field(default_factory=dict)


CheckFunction = Callable[[RunEvidence, CheckParams], CheckResult]


@dataclass(frozen=True, kw_only=True)
class CheckSpec:
    """A check as an experiment names it."""

    name: str
    weight: float = 1.0
    options: Mapping[str, ParamValue] = field(default_factory=dict)


_CHECKS: dict[str, tuple[CheckFunction, str]] = {}  # name -> (function, where it was defined)
_LOCK = threading.Lock()
_plugins_loaded = False


def check(name: str) -> Callable[[CheckFunction], CheckFunction]:
    """Register the decorated function as the check ``name``; two checks of one name are an error."""

    def register(function: CheckFunction) -> CheckFunction:
        where = f"{function.__module__}.{function.__qualname__}"
        with _LOCK:
            known = _CHECKS.get(name)
            if known is not None and known[1] != where:
                raise ExperimentError(f"two checks are named {name!r}: {known[1]} and {where}; rename one")
            _CHECKS[name] = (function, where)
        return function

    return register


def _load_plugins() -> None:
    """Import the built-in checks and every module of the ``mlchaos.checks`` entry-point group, once."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    importlib.import_module("harness.checks.builtin")
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry.load()
        except Exception as exc:  # a broken plugin must name itself, not crash the harness
            raise ExperimentError(f"check plugin {entry.name} ({entry.value}) could not be loaded: "
                                  f"{type(exc).__name__}: {exc}; fix or uninstall it") from None


def known_checks() -> tuple[str, ...]:
    """Every registered check name, sorted (built-ins and plugins)."""
    _load_plugins()
    with _LOCK:
        return tuple(sorted(_CHECKS))


def lookup(name: str) -> CheckFunction:
    """The check ``name``; an ExperimentError lists the known ones."""
    _load_plugins()
    with _LOCK:
        found = _CHECKS.get(name)
    if found is None:
        raise ExperimentError(f"unknown check {name!r}; known checks: {', '.join(known_checks())}")
    return found[0]


def evaluate(specs: Sequence[CheckSpec], evidence: RunEvidence) -> list[CheckResult]:
    """Run each named check; a crash gives ``unknown`` with the weight kept."""
    results = []
    for spec in specs:
        function = lookup(spec.name)
        params = CheckParams(weight=spec.weight, options=spec.options)
        result = safe(spec.name, functools.partial(function, evidence, params))
        results.append(result if result.weight == spec.weight and result.name == spec.name else CheckResult(
            name=spec.name, verdict=result.verdict, evidence=result.evidence, weight=spec.weight))
    return results
