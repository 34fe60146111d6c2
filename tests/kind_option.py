"""The ``--with-kind`` option and the ``kind`` marker: tests that create real kind clusters run only when asked.

Hooked up by ``pytest_addoption``/``pytest_configure`` in ``tests/conftest.py``: pytest reads
command-line options only from conftests it loads at startup (those of the folders named
on the command line and their parents), and that one is loaded for every test path.
"""

from __future__ import annotations

import shutil

import pytest

__all__ = ["KIND_MARKER", "add_kind_option", "register_kind_marker", "skip_unless_kind"]

KIND_MARKER = "kind: creates a real kind cluster (needs kind and Docker); runs only with --with-kind"


def add_kind_option(parser: pytest.Parser) -> None:
    parser.addoption("--with-kind", action="store_true", default=False, dest="with_kind",
                     help="run the tests marked kind: they create real kind clusters (kind and Docker needed)")


def register_kind_marker(config: pytest.Config) -> None:
    config.addinivalue_line("markers", KIND_MARKER)


def skip_unless_kind(config: pytest.Config) -> None:
    """Skip the calling test unless ``--with-kind`` was given and kind and docker are on PATH."""
    if not config.getoption("with_kind", default=False):
        pytest.skip("creates a real kind cluster: run with --with-kind (kind and Docker needed)")
    missing = [tool for tool in ("kind", "docker") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"--with-kind given, but {' and '.join(missing)} not on PATH")
