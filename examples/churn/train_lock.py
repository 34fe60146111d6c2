"""One training process per run at a time: a lock object in S3 next to the run's checkpoints.

Why: when a pod is deleted gracefully (or evicted), Kubernetes starts its replacement while the old
process is still writing its SIGTERM checkpoint. The replacement must restore THAT checkpoint, so it
waits for the lock, which the old process deletes only after its last manifest is written.

- acquire: create the object with ``If-None-Match: *``. If it exists, poll until it is deleted, or
  until its ETag has not changed for ``STALE_SECONDS`` on the waiter's own clock (the holder was
  SIGKILLed: nobody heartbeats it any more), then take it over with ``If-Match`` on that ETag. A lock
  naming this very pod (its previous container, which has exited) is taken over at once.
- heartbeat: a thread rewrites the object every ``BEAT_SECONDS`` with ``If-Match``; a failed
  precondition means another process took the lock over, and ``lost`` turns true.
- release: stop the heartbeat and delete the object with ``If-Match``.
Every body carries a fresh token and a beat counter, so every write changes the ETag.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid

from storage import Blob, Bucket

BEAT_SECONDS = 1.0
STALE_SECONDS = 4.0
POLL_SECONDS = 0.2
WAIT_LIMIT_SECONDS = 900.0


class LockUnavailable(Exception):
    """Another live process kept the run's training lock for the whole wait limit."""


class TrainingLock:
    def __init__(self, bucket: Bucket, key: str, *, holder: str) -> None:
        self.key = key
        self._bucket = bucket
        self._holder = holder
        self._token = uuid.uuid4().hex
        self._beats = 0
        self._etag: str | None = None
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def acquire(self, cancel: threading.Event) -> bool:
        """Hold the lock (True), or give up because ``cancel`` was set (False).

        Raises ``LockUnavailable`` after ``WAIT_LIMIT_SECONDS`` of a lock that stays alive.
        """
        deadline = time.monotonic() + WAIT_LIMIT_SECONDS
        watched: tuple[str, float] | None = None  # (ETag, when first seen)
        announced = False
        while not cancel.is_set():
            body = self._body()
            if self._bucket.put_new(self.key, body) and self._confirm(body):
                break
            current = self._bucket.get(self.key)
            if current is not None:
                owner = _field(current, "holder")
                if watched is None or watched[0] != current.etag:
                    watched = (current.etag, time.monotonic())
                stale = time.monotonic() - watched[1] >= STALE_SECONDS
                if (owner == self._holder or stale) and self._take_over(current):
                    break
                if not announced:
                    print(f"churn: waiting for the training lock {self.key}, held by {owner}", file=sys.stderr,
                          flush=True)
                    announced = True
            if time.monotonic() >= deadline:
                raise LockUnavailable(f"the training lock {self.key} stayed held for {WAIT_LIMIT_SECONDS:.0f} s; "
                                      "another attempt of this run is still training")
            cancel.wait(POLL_SECONDS)
        if cancel.is_set() and self._etag is None:
            return False
        self._thread = threading.Thread(target=self._heartbeat, name="train-lock", daemon=True)
        self._thread.start()
        return True

    def release(self) -> None:
        """Stop the heartbeat; delete the lock if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._etag is None or self.lost:
            return
        if not self._bucket.delete_if_match(self.key, self._etag):
            current = self._bucket.get(self.key)  # a beat whose answer was lost may have changed the ETag
            if current is not None and _field(current, "token") == self._token:
                self._bucket.delete_if_match(self.key, current.etag)
        self._etag = None

    def _body(self) -> bytes:
        return json.dumps({"holder": self._holder, "token": self._token, "beat": self._beats}).encode()

    def _confirm(self, body: bytes) -> bool:
        """Read back: with a store that checks preconditions loosely, the later of two racing writers wins."""
        current = self._bucket.get(self.key)
        if current is None or current.body != body:
            return False
        self._etag = current.etag
        return True

    def _take_over(self, current: Blob) -> bool:
        body = self._body()
        return self._bucket.replace(self.key, body, current.etag) is not None and self._confirm(body)

    def _heartbeat(self) -> None:
        while not self._stop.wait(BEAT_SECONDS):
            assert self._etag is not None
            self._beats += 1
            body = self._body()
            try:
                etag = self._bucket.replace(self.key, body, self._etag)
                if etag is None:  # not our version any more, unless our own earlier write landed unseen
                    current = self._bucket.get(self.key)
                    if current is None or _field(current, "token") != self._token:
                        print(f"churn: lost the training lock {self.key} to "
                              f"{'nobody' if current is None else _field(current, 'holder')}", file=sys.stderr,
                              flush=True)
                        self._lost.set()
                        return
                    etag = current.etag
                self._etag = etag
            except Exception as error:  # S3 briefly unreachable: beat again next time
                print(f"churn: heartbeat of {self.key} failed: {error}", file=sys.stderr, flush=True)


def _field(blob: Blob, name: str) -> str:
    try:
        return str(json.loads(blob.body).get(name, ""))
    except (ValueError, AttributeError):
        return ""
