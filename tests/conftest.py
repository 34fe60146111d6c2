"""Fixtures shared by the test folders: one embedded Kubernetes cluster per test session, a fresh namespace per test.

Every backend passes the same contract suite (``tests/cluster/test_contract.py``): the
``cluster`` fixture is parametrised by backend; today that is the Kubernetes backend on
the embedded cluster.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cluster.embedded.cluster import EmbeddedCluster, NodeShape
from harness.cluster.kube.backend import KubernetesCluster
from harness.undo import UndoLog
from tests.cluster.conftest import Collector
from tests.kind_option import add_kind_option, register_kind_marker


def pytest_addoption(parser: pytest.Parser) -> None:
    add_kind_option(parser)


def pytest_configure(config: pytest.Config) -> None:
    register_kind_marker(config)


@pytest.fixture
def undo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> UndoLog:
    monkeypatch.setenv("HARNESS_STATE_DIR", str(tmp_path / "state"))
    return UndoLog(tmp_path / "state" / "undo")


@pytest.fixture
def collector() -> Collector:
    return Collector()


@pytest.fixture(scope="session")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCluster]:
    """One embedded cluster (two nodes of 3 pods) shared by the session's cluster tests."""
    state = tmp_path_factory.mktemp("embedded-state")
    # 8 advertised nvidia.com/gpu per node: GPU scheduling tests (gpu-fragmentation) need them.
    with EmbeddedCluster(undo=UndoLog(state / "undo"), nodes={"node-a": NodeShape(pods=3, gpus=8),
                                                               "node-b": NodeShape(pods=3, gpus=8)}) as cluster:
        yield cluster
    assert UndoLog(state / "undo").pending() == [], "the embedded cluster left undo records behind"


@pytest.fixture(params=["embedded"])
def cluster(request: pytest.FixtureRequest, undo: UndoLog) -> Iterator[KubernetesCluster]:
    """The backend under contract, working in a namespace of its own."""
    embedded: EmbeddedCluster = request.getfixturevalue("embedded")
    run = uuid.uuid4().hex[:8]
    with KubernetesCluster(kubeconfig=embedded.kubeconfig, namespace=f"t-{run}", run=run, undo=undo,
                           flavor="embedded", backfill_pods=1) as backend:
        yield backend
        for node in embedded.node_names:
            backend.uncordon(node)
    assert undo.pending() == [], "the backend left undo records behind"
