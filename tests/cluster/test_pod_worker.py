"""A process node's pod worker lets every deleted pod go, also when the deletion races its first patch."""

from __future__ import annotations

import copy
import sys
import threading
from pathlib import Path
from typing import Any

from harness.cluster.embedded.node_agent.cpu_limits import CpuLimits
from harness.cluster.embedded.node_agent.pod_worker import FINALIZER, PodWorker
from harness.undo import UndoLog

POD: dict[str, Any] = {
    "metadata": {"namespace": "ns", "name": "work-abcde", "uid": "u-1"},
    "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 30,
             "containers": [{"name": "main", "command": [sys.executable, "-c", "pass"]}]},
}


class FakeApi:
    """The API server's side: the finalizer patch is refused once the pod is being deleted, as the real one
    refuses it ("no new finalizers can be added if the object is being deleted")."""

    def __init__(self) -> None:
        self.worker: PodWorker | None = None
        self.patches: list[Any] = []
        self.removed = threading.Event()

    def patch_metadata(self, namespace: str, name: str, body: Any) -> None:
        self.patches.append(body)
        if isinstance(body, dict) and FINALIZER in body["metadata"].get("finalizers", []):
            deleting = copy.deepcopy(POD)
            deleting["metadata"]["deletionTimestamp"] = "2026-12-07T00:00:00Z"
            assert self.worker is not None
            self.worker.update(deleting)  # the deletion the watch delivers while the patch is under way
            raise RuntimeError("metadata.finalizers: Forbidden: no new finalizers can be added if the object "
                               "is being deleted")

    def patch_status(self, namespace: str, name: str, body: Any) -> None:
        pass

    def remove(self, namespace: str, name: str, uid: str) -> None:
        assert (namespace, name, uid) == ("ns", "work-abcde", "u-1")
        self.removed.set()


def test_a_pod_deleted_while_its_finalizer_is_being_added_is_still_removed(tmp_path: Path) -> None:
    api = FakeApi()
    undo = UndoLog(tmp_path / "undo")
    worker = PodWorker(pod=copy.deepcopy(POD), node="n1", workdir=tmp_path / "node", pod_cwd=tmp_path, undo=undo,
                       cpu_limits=CpuLimits(undo=undo, name="test-worker"), patch_status=api.patch_status,
                       patch_metadata=api.patch_metadata, remove=api.remove, allocate_port=lambda: 0)
    api.worker = worker
    worker.start()
    assert worker.finished.wait(30), "the worker never ended"
    assert api.removed.is_set(), "the deleted pod was left on the API server, where it would stay forever"
    # The finalizer list is set whether or not the refused finalizer ever reached the object.
    assert api.patches[-1] == [{"op": "add", "path": "/metadata/finalizers", "value": []}]
    assert undo.pending() == []
