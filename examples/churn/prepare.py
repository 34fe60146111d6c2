"""prepare: the day's synthetic churn features, one file per split, each written once.

Keys: ``<pipeline>/features/date=<PARTITION_DATE>/seed=<SEED>/{train,holdout}.pt``. The content is a
pure function of (date, seed), so concurrent runs and backfills of a date race harmlessly: the first
conditional PUT wins, the others find the file there.
"""

from __future__ import annotations

import features
from runner import EXIT_OK, Step, run


def prepare(step: Step) -> int:
    c = step.config
    wanted = [split for split in features.SPLITS if not step.bucket.exists(step.keys.features(split))]
    if not wanted:
        step.skip("features of this date and seed already exist")
        return EXIT_OK
    generated = features.generate(c.date, c.seed)
    for split in wanted:
        key = step.keys.features(split)
        if step.bucket.put_new(key, features.to_bytes(generated[split])):
            step.wrote("features", key, f"features/{c.date}/{c.seed}/{split}")
    return EXIT_OK


if __name__ == "__main__":
    run("prepare", prepare)
