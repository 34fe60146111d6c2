"""Read a YAML (or JSON) file the user wrote, with a one-line error that names the line to fix."""

from __future__ import annotations

from pathlib import Path

import yaml

__all__ = ["YamlSyntaxError", "read_yaml"]


class YamlSyntaxError(ValueError):
    """The file is not valid YAML; the message names the file and the line."""


def read_yaml(path: Path) -> object:
    """The parsed document at ``path`` (``None`` for an empty file). Raises YamlSyntaxError on bad syntax;
    callers check the file exists first, to say what kind of file was missing."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise YamlSyntaxError(f"{path}: not valid YAML{where}: fix the syntax") from None
