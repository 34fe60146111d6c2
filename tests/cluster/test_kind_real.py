"""A real kind cluster: created with KindCluster, its nodes Ready, deleted again.

Slow (it creates a three-node cluster and builds the pipeline image) and needs kind and a
running Docker: it runs only with ``--with-kind``, e.g.

    .venv/bin/pytest tests/cluster/test_kind_real.py --with-kind
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from kubernetes import client, config

from harness.cluster.kind import KindCluster
from harness.undo import UndoLog
from tests.kind_option import skip_unless_kind

pytestmark = pytest.mark.kind


def _name(node: client.V1Node) -> str:
    assert node.metadata is not None
    return str(node.metadata.name)


def _ready(node: client.V1Node) -> bool:
    conditions = node.status.conditions if node.status is not None else None
    return any(c.type == "Ready" and c.status == "True" for c in (conditions or []))


def _chaos_target(node: client.V1Node) -> bool:
    labels = node.metadata.labels if node.metadata is not None else None
    return (labels or {}).get("mlchaos.io/chaos-target") == "true"


def test_a_kind_cluster_comes_up_ready_and_goes(request: pytest.FixtureRequest, tmp_path: Path,
                                                undo: UndoLog) -> None:
    skip_unless_kind(request.config)
    run = f"t{uuid.uuid4().hex[:8]}"
    with KindCluster(name=None, run=run, workdir=tmp_path / "work", undo=undo, keep=False) as cluster:
        api = client.CoreV1Api(config.new_client_from_config(config_file=str(cluster.kubeconfig),
                                                             context=cluster.context))
        nodes = api.list_node().items
        assert len(nodes) == 3, [_name(n) for n in nodes]
        assert all(_ready(n) for n in nodes), [_name(n) for n in nodes if not _ready(n)]
        assert len([n for n in nodes if _chaos_target(n)]) == 2, "the two workers are the chaos targets"
        assert cluster.endpoints.s3_url == "http://127.0.0.1:30080"
        name = cluster.name
    kind = shutil.which("kind")
    assert kind is not None
    listed = subprocess.run([kind, "get", "clusters"], check=True, capture_output=True, text=True,
                            timeout=60).stdout.split()
    assert name not in listed
    assert undo.pending() == []
