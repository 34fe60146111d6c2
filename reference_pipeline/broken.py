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

VARIANTS: dict[str, str] = {
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
