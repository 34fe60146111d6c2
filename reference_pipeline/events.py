"""Structured event lines on stdout: the pipeline half of the workload contract.

Each event is ONE JSON line ``{"event": <kind>, "ts": <unix seconds>, ...fields}``
with exactly the fields the harness's history defines for that kind (the harness
adds ``pod``/``job``/``attempt`` itself). The field sets are repeated here rather
than imported, because a user's pipeline does not have the harness installed.
The ``lease_*`` kinds (the training lease, ``lease.py``) are the pipeline's own:
the harness keeps them as ``UnknownEvent``.
"""

from __future__ import annotations

import json
import sys
import threading
import time

FIELDS: dict[str, frozenset[str]] = {
    kind: frozenset(names.split())
    for kind, names in {
        "run_started": "pipeline run_id date kind step_name",
        "step_finished": "run_id step_name seconds",
        "step_skipped": "run_id step_name reason",
        "training_started": "run_id start_step total_steps checkpoint_every seed device",
        "train_step": "run_id step loss",
        "checkpoint_saved": "run_id step manifest_key seconds bytes reason",
        "checkpoint_restored": "run_id step manifest_key seconds",
        "sigterm_received": "run_id step",
        "training_completed": "run_id step params_sha256",
        "artifact_written": "run_id artifact key logical_id",
        "evaluated": "run_id metric value threshold passed",
        "model_registered": "run_id version created",
        # The training lease (lease.py): an attempt found it held by another (held_by)
        # and waits; it got it after `seconds` because the holder released it, let it go
        # stale, or was this pod's previous container (how: released, stale, restarted);
        # it lost it while training (reason) and stops.
        "lease_waiting": "run_id holder held_by",
        "lease_waited": "run_id holder held_by seconds how",
        "lease_lost": "run_id holder reason",
    }.items()
}

# The checkpoint uploader prints from a background thread; one line must never
# interleave with another.
_lock = threading.Lock()


def emit(event: str, /, **fields: object) -> None:
    """Print one event line and flush it at once (a SIGKILL must not eat it).

    Raises ``ValueError`` when ``fields`` are not exactly the fields of ``event``,
    so a contract drift fails loudly in tests instead of silently in the harness.
    """
    expected = FIELDS[event]
    if set(fields) != expected:
        raise ValueError(f"event {event}: fields {sorted(fields)} != {sorted(expected)}")
    line = json.dumps({"event": event, "ts": time.time(), **fields}, sort_keys=True)
    with _lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
