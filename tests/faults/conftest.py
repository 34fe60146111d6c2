"""The cluster tests' fixtures serve the fault tests too."""

from tests.cluster.conftest import collector, make_cluster, undo  # noqa: F401  (pytest fixtures)
