"""Deliberately broken variants, for testing that the harness catches them.

``PIPELINE_BROKEN`` holds a comma-separated subset of ``VARIANTS``; empty means the
correct pipeline. Each variant changes exactly one behaviour and is checked only
at the one place it affects.
"""

from __future__ import annotations

from .errors import UserError

IGNORE_CHECKPOINT = "ignore-checkpoint"
APPEND_FEATURES = "append-features"
UNCONDITIONAL_PUBLISH = "unconditional-publish"
NO_RETRY = "no-retry"
RESTORE_WITHOUT_MANIFEST = "restore-without-manifest"
RESTORE_UNVERIFIED = "restore-unverified"
ALIAS_WITHOUT_IFMATCH = "alias-without-ifmatch"
REGISTER_BELOW_GATE = "register-below-gate"
ACCEPT_PARTIAL_DAY = "accept-partial-day"
MIXED_LINEAGE = "mixed-lineage"
IGNORE_NOTICE = "ignore-notice"
NO_FINGERPRINT_CHECK = "no-fingerprint-check"

VARIANTS: dict[str, str] = {
    IGNORE_NOTICE: (
        "train ignores SIGTERM (a termination notice): it keeps training with periodic checkpoints only, "
        "so it is killed when the notice window ends and the steps since the last periodic checkpoint are lost"
    ),
    NO_FINGERPRINT_CHECK: (
        "train restores a checkpoint without comparing the environment fingerprint it was written under "
        "with its own, so it resumes silently across a changed image or numeric setting"
    ),
    IGNORE_CHECKPOINT: "train never restores a checkpoint and always starts from step 0",
    APPEND_FEATURES: (
        "features appends every shard as a new object features/<p>/date=<d>/entity_shard=<ss>/part-<uuid>.npz "
        "on every run (no per-partition key, no skip); train and evaluate read all parts, so a rerun or a "
        "concurrent backfill of the date duplicates rows"
    ),
    UNCONDITIONAL_PUBLISH: (
        "final artifacts (model.pt, evaluation.json, registry version and run records) are written with a "
        "plain PUT instead of IfNoneMatch='*', so a retried or concurrent publish overwrites them"
    ),
    NO_RETRY: "the S3 client makes one attempt per request (botocore retries off), so one 503 SlowDown fails the step",
    RESTORE_WITHOUT_MANIFEST: (
        "train restores the newest state.pt whether or not its MANIFEST.json exists, unverified, "
        "and reports the state.pt key as manifest_key"
    ),
    RESTORE_UNVERIFIED: (
        "train restores the newest complete checkpoint without checking its state.pt against the manifest's "
        "sha256 and size, so a corrupted state is loaded (or crashes the restore)"
    ),
    ALIAS_WITHOUT_IFMATCH: (
        "register reads the latest alias and, if it is older, replaces it with a plain PUT (no IfMatch on the "
        "ETag read), so of two concurrent moves the later write wins: an update is lost or the alias moves back"
    ),
    REGISTER_BELOW_GATE: (
        "evaluate writes its result but does not fail below AUC_GATE, and register registers the model and "
        "moves latest without looking at the evaluation"
    ),
    ACCEPT_PARTIAL_DAY: (
        "validate passes at once whatever raw hours are missing (no waiting), and features builds the day "
        "from the parts that are there"
    ),
    MIXED_LINEAGE: (
        "evaluate loads the model the registry's latest alias points at (its own only when nothing is "
        "registered yet) instead of its run's model, so the AUC gate judges another run's model"
    ),
}


def parse(value: str) -> frozenset[str]:
    """The set of variant names in ``value``; raises ``UserError`` on an unknown name."""
    names = frozenset(n.strip() for n in value.split(",") if n.strip())
    unknown = sorted(names - VARIANTS.keys())
    if unknown:
        raise UserError(
            f"PIPELINE_BROKEN names unknown variant(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(VARIANTS))} (leave it empty for the correct pipeline)"
        )
    return names
