"""``zero-duplicate-artifacts`` on hand-built histories and inventories (no S3)."""

from __future__ import annotations

import json
import re
from dataclasses import replace

from harness.checks.duplicates import NAME
from harness.checks.duplicates import check_duplicates as judge_duplicates
from harness.checks.verdict import CheckResult
from harness.evidence.inventory import Inventory, ObjectVersion
from harness.history.events import (
    ArtifactWritten,
    CheckpointRestored,
    CheckpointSaved,
    Event,
    StepFinished,
    TrainingCompleted,
)
from tests.checks.layouts import LAYOUT

RUN = "r1"


def check_duplicates(events: list[Event], inventory: Inventory | None, *, weight: float = 1.0) -> CheckResult:
    return judge_duplicates(events, inventory, layout=LAYOUT, weight=weight)
PREFIX = f"runs/ref/2024-03-01/{RUN}"
CK = f"{PREFIX}/checkpoints/step-{{:06d}}"


class Store:
    """A hand-built versioned bucket: ``put`` adds a version, ``delete`` a marker."""

    def __init__(self) -> None:
        self.versions: list[ObjectVersion] = []
        self.bodies: dict[str, bytes] = {}
        self.clock = 100.0

    def put(self, key: str, body: bytes = b"x") -> Store:
        self.clock += 1
        self.versions = [replace(v, is_latest=False) if v.key == key else v for v in self.versions]
        self.versions.insert(0, ObjectVersion(key=key, version_id=f"v{len(self.versions)}", size=len(body),
                                              etag=f"e{len(self.versions)}", last_modified=self.clock,
                                              is_latest=True, is_delete_marker=False))
        self.bodies[key] = body
        return self

    def delete(self, key: str) -> Store:
        self.clock += 1
        self.versions = [replace(v, is_latest=False) if v.key == key else v for v in self.versions]
        self.versions.insert(0, ObjectVersion(key=key, version_id=f"d{len(self.versions)}", size=0, etag="",
                                              last_modified=self.clock, is_latest=True, is_delete_marker=True))
        return self

    def inventory(self, *, versioned: bool = True) -> Inventory:
        ordered = sorted(self.versions, key=lambda v: (v.key, -v.last_modified))
        wanted = re.compile(LAYOUT.body_pattern())  # what take_inventory reads for this layout
        bodies = tuple((k, b) for k, b in self.bodies.items() if wanted.match(k))
        return Inventory(bucket="bkt", taken_at=self.clock, versions=tuple(ordered), versioned=versioned,
                         bodies=bodies)


def ack(artifact: str, key: str, logical_id: str, *, pod: str = "p-0", attempt: int = 0) -> ArtifactWritten:
    return ArtifactWritten(ts=1.0, pod=pod, attempt=attempt, run_id=RUN, artifact=artifact, key=key,
                           logical_id=logical_id)


def clean_run() -> tuple[list[Event], Store]:
    """A complete run: 2 raw parts, 2 feature shards, 2 checkpoints, model, evaluation, registry."""
    store, events = Store(), []
    for hour in range(2):
        key = f"raw/ref/date=2024-03-01/hour={hour:02d}/part-0.npz"
        store.put(key)
        events.append(ack("raw_part", key, f"raw/2024-03-01/{hour:02d}"))
    for shard in range(2):
        key = f"features/ref/date=2024-03-01/entity_shard={shard:02d}.npz"
        store.put(key)
        events.append(ack("feature_partition", key, f"features/2024-03-01/{shard:02d}"))
    store.put(f"{PREFIX}/validate.json")
    for step in (10, 20):
        manifest = CK.format(step) + "/MANIFEST.json"
        state = CK.format(step) + "/state.pt"
        store.put(state).put(manifest, json.dumps({"state_key": state}).encode())
        events.append(ack("checkpoint", manifest, f"checkpoint/{RUN}/{step}"))
        events.append(CheckpointSaved(ts=2.0, run_id=RUN, step=step, manifest_key=manifest, seconds=0.1, bytes=1,
                                      reason="periodic"))
    store.put(f"{PREFIX}/model/model.pt")
    events.append(ack("model", f"{PREFIX}/model/model.pt", f"model/{RUN}"))
    events.append(TrainingCompleted(ts=3.0, run_id=RUN, step=20, params_sha256="a" * 64))
    store.put(f"{PREFIX}/evaluation.json")
    events.append(ack("evaluation", f"{PREFIX}/evaluation.json", f"evaluation/{RUN}"))
    version = "registry/ref/versions/000001.json"
    store.put(version, json.dumps({"version": 1, "run_id": RUN}).encode())
    store.put(f"registry/ref/runs/{RUN}.json", b'{"version": 1}')
    store.put("registry/ref/aliases/latest.json")
    events.append(ack("model_version", version, f"model_version/{RUN}"))
    events.append(StepFinished(ts=4.0, run_id=RUN, step_name="register", seconds=1.0))
    return events, store


def test_clean_run_passes_with_jepsen_style_counts() -> None:
    events, store = clean_run()
    result = check_duplicates(events, store.inventory(), weight=2.0)
    assert (result.name, result.verdict, result.weight) == (NAME, "pass", 2.0)
    # 2 raw + 2 features + validate + 2x(state+manifest) + model + evaluation + version + run record = 13 versions
    # (the alias is excluded); acknowledged: 2 + 2 + 2 + 1 + 1 + 1 = 9; unique artifacts: 2+2+1+2+1+1+1 = 10.
    assert result.evidence[0] == (
        "attempted 13 (13 object versions in bucket bkt), acknowledged 9, unique logical artifacts 10, "
        "duplicated 0, partial 0"
    )
    assert any("registry/ref/aliases/latest.json (1 version(s))" in line for line in result.evidence)


def test_artifact_acknowledged_twice_fails() -> None:
    events, store = clean_run()
    events.append(ack("model", f"{PREFIX}/model/model.pt", f"model/{RUN}", pod="p-1", attempt=1))
    result = check_duplicates(events, store.inventory())
    assert result.verdict == "fail"
    assert "acknowledged 10, unique logical artifacts 10, duplicated 1, partial 0" in result.evidence[0]
    assert (f"duplicate model/{RUN}: acknowledged 2 times ({PREFIX}/model/model.pt by p-0 attempt 0, "
            f"{PREFIX}/model/model.pt by p-1 attempt 1)") in result.evidence


def test_overwritten_key_fails() -> None:
    events, store = clean_run()
    store.put(f"{PREFIX}/evaluation.json", b"again")
    result = check_duplicates(events, store.inventory())
    assert result.verdict == "fail"
    assert result.evidence[0].startswith("attempted 14 (14 object versions in bucket bkt), acknowledged 9, "
                                         "unique logical artifacts 10, duplicated 1")
    line = next(x for x in result.evidence if x.startswith("duplicate"))
    assert line.startswith(f"duplicate evaluation/{RUN}: overwritten: {PREFIX}/evaluation.json has 2 versions (")


def test_two_keys_for_one_feature_partition_fail() -> None:
    events, store = clean_run()
    for run in ("a", "b"):
        key = f"features/ref/date=2024-03-01/entity_shard=05/part-{run}.npz"
        store.put(key)
        events.append(ack("feature_partition", key, "features/2024-03-01/05"))
    result = check_duplicates(events, store.inventory())
    assert result.verdict == "fail"
    assert "unique logical artifacts 11, duplicated 1, partial 0" in result.evidence[0]
    line = next(x for x in result.evidence if x.startswith("duplicate"))
    assert line.startswith("duplicate features/2024-03-01/05: acknowledged 2 times (")
    assert line.endswith("; stored under 2 keys (features/ref/date=2024-03-01/entity_shard=05/part-a.npz, "
                         "features/ref/date=2024-03-01/entity_shard=05/part-b.npz)")


def test_two_registry_versions_of_one_run_fail() -> None:
    events, store = clean_run()
    store.put("registry/ref/versions/000002.json", json.dumps({"version": 2, "run_id": RUN}).encode())
    result = check_duplicates(events, store.inventory())
    assert result.verdict == "fail"
    assert (f"duplicate model_version/{RUN}: stored under 2 version keys (registry/ref/versions/000001.json, "
            "registry/ref/versions/000002.json)") in result.evidence


def test_deleted_orphan_version_is_not_live() -> None:
    events, store = clean_run()
    store.put("registry/ref/versions/000002.json", json.dumps({"version": 2, "run_id": RUN}).encode())
    store.delete("registry/ref/versions/000002.json")
    result = check_duplicates(events, store.inventory())
    assert result.verdict == "pass", result.evidence


def test_leftover_state_without_manifest_after_success_fails() -> None:
    events, store = clean_run()
    store.put(CK.format(25) + "/state.pt")
    result = check_duplicates(events, store.inventory())
    assert result.verdict == "fail"
    assert "duplicated 0, partial 1" in result.evidence[0]
    assert (f"partial checkpoint/{RUN}/25: {CK.format(25)}/state.pt has no manifest, "
            f"and training of {RUN} completed") in result.evidence


def test_state_without_manifest_while_training_runs_is_not_judged() -> None:
    events, store = clean_run()
    events = [e for e in events if not isinstance(e, TrainingCompleted)]
    store.versions = [v for v in store.versions if "model.pt" not in v.key]
    events = [e for e in events if not (isinstance(e, ArtifactWritten) and e.artifact == "model")]
    store.put(CK.format(25) + "/state.pt")
    result = check_duplicates(events, store.inventory())
    assert result.verdict == "pass", result.evidence
    assert any("may be in flight, not judged" in line for line in result.evidence)


def test_temporary_key_left_after_success_fails() -> None:
    events, store = clean_run()
    store.put(f"{PREFIX}/model/model.pt.tmp")
    result = check_duplicates(events, store.inventory())
    assert result.verdict == "fail"
    expected = f"partial temporary key {PREFIX}/model/model.pt.tmp left after the pipeline's steps finished"
    assert expected in result.evidence


def test_restoring_a_checkpoint_without_manifest_fails() -> None:
    events, store = clean_run()
    store.put(CK.format(30) + "/state.pt")
    events.append(CheckpointRestored(ts=5.0, pod="p-1", attempt=1, run_id=RUN, step=30,
                                     manifest_key=CK.format(30) + "/state.pt", seconds=0.1))
    result = check_duplicates(events, store.inventory())
    assert result.verdict == "fail"
    assert (f"partial checkpoint restored: p-1 restored step 30 of {RUN} from {CK.format(30)}/state.pt, "
            "which is a checkpoint's state, not its manifest") in result.evidence


def test_restore_of_a_manifest_that_never_existed_or_of_another_step_fails() -> None:
    events, store = clean_run()
    ghost = CK.format(40) + "/MANIFEST.json"
    events.append(CheckpointRestored(ts=5.0, run_id=RUN, step=40, manifest_key=ghost, seconds=0.1))
    events.append(CheckpointRestored(ts=6.0, run_id=RUN, step=20, manifest_key=CK.format(10) + "/MANIFEST.json",
                                     seconds=0.1))
    events.append(CheckpointRestored(ts=7.0, run_id=RUN, step=20, manifest_key="", seconds=0.1))
    result = check_duplicates(events, store.inventory())
    assert result.verdict == "fail"
    assert "partial 3" in result.evidence[0]
    text = "\n".join(result.evidence)
    assert "which never existed in the store" in text
    assert f"which is the manifest of run {RUN} step 10, not of this run and step" in text
    assert "from (empty key), an empty manifest key" in text


def test_restore_of_a_complete_checkpoint_passes() -> None:
    events, store = clean_run()
    events.append(CheckpointRestored(ts=5.0, run_id=RUN, step=20, manifest_key=CK.format(20) + "/MANIFEST.json",
                                     seconds=0.1))
    assert check_duplicates(events, store.inventory()).verdict == "pass"


def test_alias_with_several_versions_passes() -> None:
    events, store = clean_run()
    store.put("registry/ref/aliases/latest.json", b"2").put("registry/ref/aliases/latest.json", b"3")
    result = check_duplicates(events, store.inventory())
    assert result.verdict == "pass", result.evidence
    assert any("registry/ref/aliases/latest.json (3 version(s))" in line for line in result.evidence)


def test_the_training_lease_is_rewritten_by_design_and_not_a_duplicate() -> None:
    events, store = clean_run()
    for renewal in range(4):
        store.put(f"{PREFIX}/train.lease", str(renewal).encode())
    result = check_duplicates(events, store.inventory())
    assert result.verdict == "pass", result.evidence
    assert any(f"{PREFIX}/train.lease (4 version(s))" in line for line in result.evidence)
    assert not any("not judged" in line for line in result.evidence)


def test_no_inventory_is_unknown_but_still_judges_the_history() -> None:
    events, _ = clean_run()
    result = check_duplicates(events, None)
    assert result.verdict == "unknown"
    assert result.evidence[0] == ("attempted 9 (acknowledged writes only; the store was not inventoried), "
                                  "acknowledged 9, unique logical artifacts 9, duplicated 0, partial 0")
    assert "not inventoried" in result.evidence[-1]
    events.append(events[0])
    assert check_duplicates(events, None).verdict == "fail"


def test_nothing_to_decide_is_unknown() -> None:
    assert check_duplicates([], None).verdict == "unknown"
    empty = Inventory(bucket="bkt", taken_at=0.0, versions=(), versioned=True)
    assert check_duplicates([], empty).verdict == "unknown"


def test_unversioned_bucket_is_unknown() -> None:
    events, store = clean_run()
    result = check_duplicates(events, store.inventory(versioned=False))
    assert result.verdict == "unknown"
    assert "not versioned" in result.evidence[-1]


def test_two_pipelines_in_one_bucket_do_not_collide() -> None:
    events, store = clean_run()
    store.put("raw/other/date=2024-03-01/hour=00/part-0.npz")
    assert check_duplicates(events, store.inventory()).verdict == "pass"


def test_examples_are_capped_at_five_artifacts() -> None:
    events, store = clean_run()
    for shard in range(7):
        for run in ("a", "b"):
            store.put(f"features/ref/date=2024-03-01/entity_shard={shard + 10:02d}/part-{run}.npz")
    result = check_duplicates(events, store.inventory())
    assert "duplicated 7, partial 0" in result.evidence[0]
    assert len([x for x in result.evidence if x.startswith("duplicate ")]) == 5
    assert "... and 2 more duplicated artifact(s)" in result.evidence


def test_keys_no_rule_covers_are_listed_and_leave_the_verdict_unknown() -> None:
    events, store = clean_run()
    store.put("scratch/notes.txt").put("exports/model.onnx")
    result = check_duplicates(events, store.inventory())
    assert result.verdict == "unknown", result.evidence
    line = next(e for e in result.evidence if "no artifact rule" in e)
    assert "2 key(s)" in line and "exports/model.onnx" in line and "scratch/notes.txt" in line


def test_a_manifest_whose_referenced_state_is_missing_is_partial() -> None:
    events, store = clean_run()
    manifest = CK.format(30) + "/MANIFEST.json"
    store.put(manifest, json.dumps({"state_key": CK.format(30) + "/state.pt"}).encode())  # state never written
    result = check_duplicates(events, store.inventory())
    assert result.verdict == "fail"
    assert any(f"manifest {manifest} references {CK.format(30)}/state.pt, which is not in the store" in line
               for line in result.evidence), result.evidence


def test_a_checkpoint_saved_outside_the_store_is_named() -> None:
    events, store = clean_run()
    events.append(CheckpointSaved(ts=2.5, run_id=RUN, step=30, manifest_key="/tmp/pod-1/ckpt/30/manifest.json",
                                  seconds=0.1, bytes=1, reason="periodic"))
    result = check_duplicates(events, store.inventory())
    assert any("never reached the object store" in line and "/tmp/pod-1/ckpt/30" in line for line in result.evidence)
