"""The training lease: at most one attempt of a run trains at a time (fencing).

Kubernetes 1.20's Job controller counts a pod with a deletionTimestamp as gone
and starts its replacement at once, while the old pod is still inside its grace
period saving its SIGTERM checkpoint (``podReplacementPolicy: Failed`` came in
1.28). Unfenced, the replacement would restore an older checkpoint than the one
being saved, and both attempts would write checkpoints for the run.

Contract, for the object ``<run prefix>/train.lease`` (``Config.lease_key``, next
to the run's checkpoints; every request goes through the pipeline's ``Store``, so
the same endpoint, client and retries):

- **acquire** before restoring any checkpoint. No object: create it with
  ``If-None-Match: *``. An object: wait, polling every ``POLL_SECONDS``, until it
  is gone (released) or stale: not rewritten for ``stale_seconds`` by the S3
  server's own clock (its ``Date`` answer header minus the object's
  ``LastModified``, so no two machines' clocks are ever compared). A stale lease
  is broken with ``If-Match`` on the stale ETag, so of two waiters one wins. After
  ``timeout_seconds`` of waiting: ``LeaseUnavailable`` (exit 4). A lease whose
  holder is this holder's own name (``POD_NAME``: the pod's previous container,
  which Kubernetes restarts in place only once it has exited) is broken at once,
  the same way: a pod runs one train process at a time.
- **renew**: a thread rewrites the object every ``RENEW_SECONDS`` with ``If-Match``
  on the ETag it last wrote. 412 (or the object gone) means another attempt broke
  the lease: a ``lease_lost`` event, ``lost`` turns True, and the training loop
  stops with ``LeaseLost`` (exit 4), writing nothing more.
- **fence**: ``ensure_held()`` before every checkpoint or model write returns at once
  while the last successful renewal was *sent* less than ``stale_seconds -
  SAFETY_SECONDS`` ago (no waiter can have judged it stale yet, whatever the 1 s
  resolution of S3 timestamps), and otherwise waits for the next renewal.
- **release** (DELETE with ``If-Match``) after the final or SIGTERM checkpoint's
  manifest is written, so a waiting attempt restores that checkpoint, never an
  older one. A lease that was lost is never deleted: it is someone else's.

Each body names the holder and carries a token unique to this acquisition and a
renewal counter, so every write changes the ETag (a renewal can never be mistaken
for the stale lease it replaced), and a conditional write whose answer was lost
(botocore retried it and got 412) is recognised as ours by reading the object back.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid

from mlchaos_probe.events import emit, register_kind

from .errors import Fenced, Terminated
from .s3 import Object, Store

# The lease's own events (the harness keeps them as unknown events): an attempt found the lease held by
# another (held_by) and waits; it got it after `seconds` because the holder released it, let it go stale, or
# was this pod's previous container (how: released, stale, restarted); it lost it while training (reason).
register_kind("lease_waiting", ("run_id", "holder", "held_by"))
register_kind("lease_waited", ("run_id", "holder", "held_by", "seconds", "how"))
register_kind("lease_lost", ("run_id", "holder", "reason"))

RENEW_SECONDS = 1.0
POLL_SECONDS = 0.2
# The holder trusts its lease until this long before a waiter may break it: a
# waiter's age estimate can be up to 1 s too high (LastModified and Date are both
# truncated to whole seconds), plus half a second for the request on the wire.
SAFETY_SECONDS = 1.5


class LeaseLost(Fenced):
    """Another attempt broke this attempt's lease (or it could not be confirmed in time)."""


class LeaseUnavailable(Fenced):
    """The lease stayed held by another attempt for the whole timeout."""


class TrainingLease:
    """The lease of one run's training, held by one process (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        key: str,
        *,
        run_id: str,
        holder: str,
        stale_seconds: float,
        timeout_seconds: float,
        renew_seconds: float = RENEW_SECONDS,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        """Raises ``ValueError`` unless ``stale_seconds`` leaves the holder a window of
        more than one renewal interval (``renew_seconds + SAFETY_SECONDS``)."""
        if stale_seconds - SAFETY_SECONDS <= renew_seconds:
            raise ValueError(f"stale_seconds={stale_seconds} must exceed renew_seconds + {SAFETY_SECONDS}")
        self.key = key
        self.holder = holder
        self._store = store
        self._run_id = run_id
        self._stale = stale_seconds
        self._timeout = timeout_seconds
        self._renew = renew_seconds
        self._poll = poll_seconds
        self._token = uuid.uuid4().hex
        self._renewals = 0
        self._etag: str | None = None
        self._valid_until = 0.0  # time.monotonic() until which no waiter can have broken the lease
        self._lost: str | None = None  # why, once lost
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._renewer: threading.Thread | None = None
        self._observed: tuple[str, float] | None = None  # (ETag, first seen) when the server sends no Date

    @property
    def lost(self) -> bool:
        """True once another attempt broke the lease: stop training, write nothing more."""
        return self._lost is not None

    def check(self) -> None:
        """Raise ``LeaseLost`` if the lease was lost (cheap: for the training loop, every step)."""
        if self._lost is not None:
            raise LeaseLost(f"training lease {self.key} lost ({self._lost}); another attempt of run "
                            f"{self._run_id} trains it, so this one stopped without writing more")

    def acquire(self, stop: threading.Event | None = None) -> None:
        """Take the lease, waiting while another attempt holds it; then renew it in a thread.

        Raises ``Terminated`` if ``stop`` is set while waiting (nothing to save yet), and
        ``LeaseUnavailable`` after ``timeout_seconds``. Emits ``lease_waiting`` when it
        finds the lease held and ``lease_waited`` once it got it after that.
        """
        started = time.monotonic()
        held_by: str | None = None
        while True:
            if stop is not None and stop.is_set():
                raise Terminated(f"SIGTERM while waiting for the training lease {self.key}")
            current = self._store.get(self.key)
            if current is None:
                how = "released"
            elif _holder_of(current) == self.holder:  # this pod's previous container: it has exited
                how, held_by = "restarted", held_by or self.holder
            elif self._is_stale(current):
                how, held_by = "stale", held_by or _holder_of(current)
            else:
                how = ""
                if held_by is None:
                    held_by = _holder_of(current)
                    emit("lease_waiting", run_id=self._run_id, holder=self.holder, held_by=held_by)
            if how and self._take(None if current is None else current.etag):
                break
            waited = time.monotonic() - started
            if waited >= self._timeout:
                now_held_by = held_by if current is None else _holder_of(current)
                age = "" if current is None else f" (last renewed {self._age(current):.0f} s ago)"
                raise LeaseUnavailable(
                    f"training lease {self.key} still held by {now_held_by}{age} after waiting {waited:.0f} s; "
                    f"another attempt of run {self._run_id} is training: let it finish, or raise "
                    "LEASE_TIMEOUT_SECONDS")
            if stop is not None:
                stop.wait(self._poll)
            else:
                time.sleep(self._poll)
        if held_by is not None:
            emit("lease_waited", run_id=self._run_id, holder=self.holder, held_by=held_by,
                 seconds=round(time.monotonic() - started, 3), how=how)
        self._renewer = threading.Thread(target=self._renew_loop, name="lease-renewer", daemon=True)
        self._renewer.start()

    def ensure_held(self) -> None:
        """Return when no other attempt can have taken the lease; raise ``LeaseLost`` if
        one did. Blocks while the last renewal is too old to be sure (S3 slow or
        throttled), until the next renewal answers, at most ``timeout_seconds``."""
        deadline = time.monotonic() + self._timeout
        with self._changed:
            while True:
                self.check()
                if self._renewer is None:
                    raise LeaseLost(f"training lease {self.key} is not held by this attempt")
                now = time.monotonic()
                if now < self._valid_until:
                    return
                if now >= deadline:
                    break
                self._changed.wait(min(self._poll, deadline - now))
        self._lose(f"not renewed for {self._timeout:.0f} s")
        self.check()

    def release(self) -> None:
        """Stop renewing and delete the lease (``If-Match``), unless it was lost. Call it only
        after the last checkpoint's manifest is written: a waiter restores at once."""
        self._stop_renewing()
        if self._lost is not None or self._etag is None:
            return
        etag = self._etag
        for _ in range(3):
            if self._store.delete_if_match(self.key, etag):
                break
            # 412: a renewal whose answer was lost may have changed the ETag; delete
            # only an object that is still ours.
            current = self._store.get(self.key)
            if current is None or _token_of(current) != self._token:
                break
            etag = current.etag

    def abandon(self) -> None:
        """Stop renewing without deleting: the lease goes stale after ``stale_seconds``
        (for a crash whose in-flight writes cannot be waited for)."""
        self._stop_renewing()

    # --- internals -------------------------------------------------------------------

    def _body(self) -> bytes:
        return json.dumps({"holder": self.holder, "run_id": self._run_id, "token": self._token,
                           "renewal": self._renewals}, sort_keys=True).encode()

    def _age(self, current: Object) -> float:
        """Seconds since ``current`` was written: by the S3 server's clock alone; without a
        ``Date`` header, how long this process has seen the same ETag (its monotonic clock)."""
        if current.server_time is not None and current.last_modified is not None:
            return (current.server_time - current.last_modified).total_seconds()
        now = time.monotonic()
        if self._observed is None or self._observed[0] != current.etag:
            self._observed = (current.etag, now)
        return now - self._observed[1]

    def _is_stale(self, current: Object) -> bool:
        return self._age(current) >= self._stale

    def _take(self, stale_etag: str | None) -> bool:
        """Create the lease (``stale_etag`` None) or break the stale one; True if ours now.

        Read back either way: a write whose answer was lost still counts when the object
        is ours, and a store that checks conditions non-atomically (as moto does) lets
        the later of two racing writers win, which the earlier one sees here.
        """
        body = self._body()
        sent = time.monotonic()
        if stale_etag is None:
            self._store.create(self.key, body)
        else:
            self._store.replace(self.key, body, stale_etag)
        current = self._store.get(self.key)
        if current is None or current.body != body:
            return False
        with self._changed:
            self._etag = current.etag
            self._valid_until = sent + self._stale - SAFETY_SECONDS
            self._changed.notify_all()
        return True

    def _renew_loop(self) -> None:
        while not self._stopping.wait(self._renew):
            try:
                self._renew_once()
            except Exception as error:
                print(f"reference_pipeline: renewing the training lease {self.key} failed: {error}",
                      file=sys.stderr, flush=True)
            if self._lost is not None:
                return

    def _renew_once(self) -> None:
        assert self._etag is not None
        self._renewals += 1
        body = self._body()
        sent = time.monotonic()
        etag = self._store.replace(self.key, body, self._etag)
        if etag is None:  # 412 or gone: ours only if a write of ours landed unseen
            current = self._store.get(self.key)
            if current is not None and current.body == body:
                etag = current.etag  # this renewal landed; botocore's retry of it got 412
            elif current is not None and _token_of(current) == self._token:
                with self._changed:
                    self._etag = current.etag  # an earlier renewal landed unseen: renew on it next tick
                return
            elif self._stopping.is_set():
                return  # released meanwhile: nothing lost
            else:
                holder = "nobody (deleted)" if current is None else _holder_of(current)
                self._lose(f"broken by {holder}")
                return
        with self._changed:
            self._etag = etag
            self._valid_until = sent + self._stale - SAFETY_SECONDS
            self._changed.notify_all()

    def _lose(self, reason: str) -> None:
        with self._changed:
            if self._lost is not None:
                return
            self._lost = reason
            self._changed.notify_all()
        self._stopping.set()
        emit("lease_lost", run_id=self._run_id, holder=self.holder, reason=reason)

    def _stop_renewing(self) -> None:
        """Stop the renewer; from now on ``ensure_held`` refuses."""
        self._stopping.set()
        with self._changed:
            renewer, self._renewer = self._renewer, None
            self._changed.notify_all()
        if renewer is not None and renewer is not threading.current_thread():
            renewer.join(timeout=10.0)  # a renewal in flight; IfMatch never recreates a deleted lease


def _parsed(current: Object) -> dict[str, object]:
    try:
        value = json.loads(current.body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _holder_of(current: Object) -> str:
    return str(_parsed(current).get("holder", "unknown"))


def _token_of(current: Object) -> str:
    return str(_parsed(current).get("token", ""))

