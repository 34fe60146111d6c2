"""Fail when an example imports the harness or the reference pipeline.

The examples show a user's pipeline: it may use the probe library (``mlchaos_probe``) and anything
else a pipeline would, but never ``harness`` or ``reference_pipeline``, so an example keeps working
for someone who installs the probe library alone. The files are parsed, not imported, so the check
needs none of the examples' dependencies.

Usage: ``python tools/check_example_imports.py [DIR_OR_FILE ...]`` (default ``examples``). Exit
status 0 when every file is clean, 1 with one line per forbidden import, 2 when a path is missing.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

FORBIDDEN = frozenset({"harness", "reference_pipeline"})


@dataclass(frozen=True, kw_only=True)
class ForbiddenImport:
    path: Path
    line: int
    module: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: imports {self.module}; examples may use mlchaos_probe, not the harness"


def imported_modules(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in ``tree``; relative imports stay inside the example."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def forbidden_imports(path: Path) -> list[ForbiddenImport]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [ForbiddenImport(path=path, line=line, module=module)
            for line, module in imported_modules(tree) if module.split(".")[0] in FORBIDDEN]


def python_files(root: Path) -> list[Path]:
    return [root] if root.is_file() else sorted(root.rglob("*.py"))


def main(argv: Sequence[str]) -> int:
    roots = [Path(a) for a in argv] or [Path("examples")]
    missing = [r for r in roots if not r.exists()]
    if missing:
        print(f"check_example_imports: {', '.join(map(str, missing))} not found; pass the examples folder",
              file=sys.stderr)
        return 2
    found = [bad for root in roots for path in python_files(root) for bad in forbidden_imports(path)]
    for bad in found:
        print(bad, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
