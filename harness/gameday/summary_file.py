"""``summary.json`` of a game-day night: a :class:`NightSummary` as JSON, read back exactly.

The file is ``json.dumps(document, indent=1, sort_keys=True)`` plus a newline, where the document is
the summary's fields as nested JSON objects (tuples become lists, mappings objects) with
``schema_version`` added. The same summary always gives the same bytes, and reading the file gives an
equal summary back (floats keep every digit; tuples come back as tuples).

Reading checks every field's presence and JSON type; keys it does not know are ignored. A missing,
unreadable or malformed file is a :class:`HarnessError` whose one-line message names the file and the
first thing wrong with it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.gameday.model import Badput, NightFigures, NightSummary, RunVerdict

__all__ = ["NIGHT_STATUSES", "SCHEMA_VERSION", "parse_summary", "read_summary", "summary_document",
           "summary_text", "write_summary"]

SCHEMA_VERSION = 1
NIGHT_STATUSES = ("passed", "failed", "interrupted")


# --- writing -----------------------------------------------------------------------


def summary_document(summary: NightSummary) -> dict[str, Any]:
    """The JSON document of ``summary`` (the JSON edge: plain dicts, lists and scalars)."""
    doc = _plain(summary)
    assert isinstance(doc, dict)
    doc["schema_version"] = SCHEMA_VERSION
    return doc


def summary_text(summary: NightSummary) -> str:
    """The exact text ``write_summary`` writes."""
    return json.dumps(summary_document(summary), indent=1, sort_keys=True) + "\n"


def write_summary(summary: NightSummary, path: Path) -> None:
    """Write ``summary`` to ``path`` (its folder must exist), replacing any earlier file.

    The file appears whole or not at all: a night's presence in the results is decided by its
    ``summary.json`` existing, so a reader must never see half of one."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(summary_text(summary), encoding="utf-8")
    os.replace(tmp, path)


def _plain(value: object) -> object:
    """``value`` as JSON values: dataclasses by field, mappings as objects, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


# --- reading -----------------------------------------------------------------------


class _Malformed(Exception):
    """What is wrong with a document, with where it is (``figures.goodput``)."""


def read_summary(path: Path) -> NightSummary:
    """Read a ``summary.json`` written by :func:`write_summary`; HarnessError when it is missing,
    unreadable or malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HarnessError(f"game-day summary {path} does not exist; "
                           "a night without one did not finish writing its results") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HarnessError(f"game-day summary {path} cannot be read: {_one_line(exc)}") from None
    return parse_summary(text, source=str(path))


def parse_summary(text: str, *, source: str) -> NightSummary:
    """The summary ``text`` holds; ``source`` (a path or URL) names it in the HarnessError raised when
    the text is not a game-day summary of this schema."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise HarnessError(f"game-day summary {source} is not JSON: {_one_line(exc)}") from None
    try:
        return _summary(_object(doc, ""))
    except _Malformed as exc:
        raise HarnessError(f"game-day summary {source} is malformed: {exc}; "
                           "it was not written by this harness version, or was edited") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


@dataclass(frozen=True)
class _Object:
    """A JSON object being read, and where it sits in the document (for messages)."""

    fields: Mapping[str, object]
    where: str

    def get(self, key: str) -> tuple[object, str]:
        where = f"{self.where}.{key}" if self.where else key
        if key not in self.fields:
            raise _Malformed(f"{where} is missing")
        return self.fields[key], where

    def text(self, key: str) -> str:
        return _text(*self.get(key))

    def number(self, key: str) -> float:
        return _number(*self.get(key))

    def optional_number(self, key: str) -> float | None:
        value, where = self.get(key)
        return None if value is None else _number(value, where)

    def integer(self, key: str) -> int:
        return _integer(*self.get(key))

    def child(self, key: str) -> _Object:
        return _object(*self.get(key))

    def items(self, key: str) -> list[tuple[object, str]]:
        """The elements of the list at ``key``, each with where it is."""
        return _items(*self.get(key))

    def counts(self, key: str) -> dict[str, int]:
        """An object of integers (fault kind -> count)."""
        counts = self.child(key)
        return {name: counts.integer(name) for name in counts.fields}


def _object(value: object, where: str) -> _Object:
    if not isinstance(value, dict):
        raise _Malformed(f"{where or 'the document'} is {_kind(value)}, not an object")
    return _Object(value, where)


def _items(value: object, where: str) -> list[tuple[object, str]]:
    if not isinstance(value, list):
        raise _Malformed(f"{where} is {_kind(value)}, not a list")
    return [(v, f"{where}[{i}]") for i, v in enumerate(value)]


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise _Malformed(f"{where} is {_kind(value)}, not a string")
    return value


def _number(value: object, where: str) -> float:
    # bool is an int to Python but never a number in these files.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Malformed(f"{where} is {_kind(value)}, not a number")
    return float(value)


def _integer(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Malformed(f"{where} is {_kind(value)}, not an integer")
    return value


def _kind(value: object) -> str:
    """How a message names a JSON value that is not what was expected."""
    if value is None:
        return "null"
    if isinstance(value, dict | list):
        return f"a {type(value).__name__}"
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _summary(doc: _Object) -> NightSummary:
    version = doc.integer("schema_version")
    if version != SCHEMA_VERSION:
        raise _Malformed(f"schema_version is {version}; this harness reads {SCHEMA_VERSION}")
    status = doc.text("status")
    if status not in NIGHT_STATUSES:
        raise _Malformed(f"status is {status!r}, not one of {', '.join(NIGHT_STATUSES)}")
    return NightSummary(
        night=doc.text("night"),
        status=status,
        seed=doc.integer("seed"),
        schedule_file=doc.text("schedule_file"),
        gameday_file=doc.text("gameday_file"),
        commit=doc.text("commit"),
        cluster=doc.text("cluster"),
        pipeline=doc.text("pipeline"),
        started_at=doc.number("started_at"),
        ended_at=doc.number("ended_at"),
        duration_seconds=doc.number("duration_seconds"),
        score=doc.number("score"),
        score_formula=doc.text("score_formula"),
        min_score=doc.number("min_score"),
        figures=_figures(doc.child("figures")),
        runs=tuple(_run(_object(v, where)) for v, where in doc.items("runs")),
    )


def _figures(doc: _Object) -> NightFigures:
    return NightFigures(
        runs_completed=doc.integer("runs_completed"),
        runs_failed=doc.integer("runs_failed"),
        faults=doc.counts("faults"),
        elapsed_seconds=doc.number("elapsed_seconds"),
        productive_seconds=doc.number("productive_seconds"),
        goodput=doc.number("goodput"),
        badput=_badput(doc.child("badput")),
        steps_lost=doc.integer("steps_lost"),
        mttr_p50=doc.optional_number("mttr_p50"),
        mttr_p95=doc.optional_number("mttr_p95"),
        mttr_max=doc.optional_number("mttr_max"),
        unrecovered=doc.integer("unrecovered"),
    )


def _badput(doc: _Object) -> Badput:
    return Badput(**{f.name: doc.number(f.name) for f in dataclasses.fields(Badput)})


def _run(doc: _Object) -> RunVerdict:
    return RunVerdict(
        index=doc.integer("index"),
        run_id=doc.text("run_id"),
        date=doc.text("date"),
        folder=doc.text("folder"),
        status=doc.text("status"),
        score=doc.number("score"),
        checks=tuple(_check(v, where) for v, where in doc.items("checks")),
    )


def _check(value: object, where: str) -> tuple[str, str, tuple[str, ...]]:
    """A check as ``[name, verdict, [evidence, ...]]``."""
    parts = _items(value, where)
    if len(parts) != 3:
        raise _Malformed(f"{where} has {len(parts)} elements, not 3 (check, verdict, evidence)")
    (name, name_at), (verdict, verdict_at), (evidence, evidence_at) = parts
    return _text(name, name_at), _text(verdict, verdict_at), tuple(_text(*e) for e in _items(evidence, evidence_at))
