"""The training lease (reference_pipeline/lease.py): two attempts of one run never train at once.

First the lease itself, in this process against moto; then the train step as real
processes, the way Kubernetes 1.20 overlaps them: the replacement pod starts while
the old one is still in its grace period (or was SIGKILLed and left its lease behind).
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from conftest import Pipeline, Result

from reference_pipeline.errors import EXIT_FENCED, EXIT_TERMINATED
from reference_pipeline.lease import LeaseLost, LeaseUnavailable, TrainingLease
from reference_pipeline.s3 import Store

STALE = 3.0  # the smallest LEASE_STALE_SECONDS allowed: keeps the in-process tests short
KEY = "runs/reference/2024-03-01/r/train.lease"


# --- the lease in this process -------------------------------------------------------


@pytest.fixture
def store(fresh: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Store:
    for name, value in fresh.env("r").items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    store = Store(fresh.endpoint, fresh.bucket, on_retries=lambda n: None)
    store.ensure_bucket()
    return store


@pytest.fixture
def lease(store: Store) -> Iterator[Callable[..., TrainingLease]]:
    """Make leases on ``store``; their renewers are stopped when the test ends, whatever happened."""
    made: list[TrainingLease] = []

    def make(holder: str, *, on: Store | None = None, timeout: float = 30.0) -> TrainingLease:
        made.append(TrainingLease(on or store, KEY, run_id="r", holder=holder, stale_seconds=STALE,
                                  timeout_seconds=timeout))
        return made[-1]

    yield make
    for each in made:
        each.abandon()


def events(out: str, kind: str) -> list[dict]:
    return [e for e in (json.loads(line) for line in out.splitlines() if line.startswith("{")) if e["event"] == kind]


def in_thread(target: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def holder_in_store(store: Store) -> str | None:
    current = store.get(KEY)
    return None if current is None else str(json.loads(current.body)["holder"])


def test_second_holder_waits_while_the_first_renews_and_gets_it_on_release(
    store: Store, lease: Callable[..., TrainingLease], capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = lease("first"), lease("second")
    first.acquire()
    waiter, errors = in_thread(second.acquire)
    time.sleep(STALE + 2)  # longer than the stale time: only the renewals keep the lease
    assert waiter.is_alive(), errors
    assert not first.lost and holder_in_store(store) == "first"
    first.ensure_held()
    first.release()
    waiter.join(timeout=10)
    assert not waiter.is_alive() and errors == []
    assert holder_in_store(store) == "second"
    out = capsys.readouterr().out
    assert [(e["holder"], e["held_by"]) for e in events(out, "lease_waiting")] == [("second", "first")]
    [waited] = events(out, "lease_waited")
    assert (waited["how"], waited["held_by"], waited["run_id"]) == ("released", "first", "r")
    assert waited["seconds"] >= STALE + 2
    second.release()
    assert store.get(KEY) is None


def test_an_abandoned_lease_goes_stale_and_only_one_of_two_waiters_breaks_it(
    store: Store, lease: Callable[..., TrainingLease], capsys: pytest.CaptureFixture[str]
) -> None:
    dead = lease("dead")
    dead.acquire()
    dead.abandon()  # a SIGKILLed holder: no renewal, no release
    abandoned = time.monotonic()
    stale_etag = store.get(KEY).etag  # type: ignore[union-attr]

    # Both waiters see the same stale ETag before either tries to break it; their
    # conditional writes then reach S3 one after the other.
    both_decided, one_at_a_time = threading.Barrier(2, timeout=30), threading.Lock()

    class RacingStore(Store):
        def replace(self, key: str, body: bytes, etag: str) -> str | None:
            if etag == stale_etag:
                both_decided.wait()
            with one_at_a_time:
                return super().replace(key, body, etag)

    racing = RacingStore(store.endpoint_url, store.bucket, on_retries=lambda n: None)
    waiters = [lease(name, on=racing, timeout=STALE + 4) for name in ("w1", "w2")]
    runs = [in_thread(w.acquire) for w in waiters]
    for thread, _ in runs:
        thread.join(timeout=30)
    errors = [e for _, errs in runs for e in errs]
    assert len(errors) == 1 and isinstance(errors[0], LeaseUnavailable), errors  # the loser timed out
    winner = next(w for (_, errs), w in zip(runs, waiters, strict=False) if not errs)
    assert f"still held by {winner.holder}" in str(errors[0]) and "LEASE_TIMEOUT_SECONDS" in str(errors[0])
    assert holder_in_store(store) == winner.holder and not winner.lost
    out = capsys.readouterr().out
    [waited] = events(out, "lease_waited")
    assert (waited["holder"], waited["how"], waited["held_by"]) == (winner.holder, "stale", "dead")
    assert waited["seconds"] >= STALE - 1.5 and time.monotonic() - abandoned >= STALE - 1.5
    winner.release()


def test_a_renewal_that_finds_the_lease_broken_loses_it_and_never_deletes_it(
    store: Store, fresh: Pipeline, lease: Callable[..., TrainingLease], capsys: pytest.CaptureFixture[str]
) -> None:
    holder = lease("holder")
    holder.acquire()
    fresh.s3.put_object(Bucket=fresh.bucket, Key=KEY, Body=json.dumps({"holder": "intruder", "token": "t"}).encode())
    deadline = time.monotonic() + 15
    while not holder.lost and time.monotonic() < deadline:
        time.sleep(0.1)
    assert holder.lost
    with pytest.raises(LeaseLost, match="broken by intruder"):
        holder.ensure_held()
    with pytest.raises(LeaseLost):
        holder.check()
    holder.release()  # not ours any more: left alone
    assert holder_in_store(store) == "intruder"
    [lost] = events(capsys.readouterr().out, "lease_lost")
    assert lost["holder"] == "holder" and "intruder" in lost["reason"]


def test_a_renewal_whose_answer_was_lost_is_recognised_as_ours(
        store: Store, lease: Callable[..., TrainingLease]) -> None:
    """botocore retries a renewal whose answer was lost; the retry gets 412 on our own new
    ETag. Reading the object back shows our body, so the lease is still ours."""
    answers_lost = []

    class LossyStore(Store):
        def replace(self, key: str, body: bytes, etag: str) -> str | None:
            written = super().replace(key, body, etag)
            if written is not None and len(answers_lost) < 2:
                answers_lost.append(key)
                return None  # the write landed; what the client saw was 412
            return written

    holder = lease("holder", on=LossyStore(store.endpoint_url, store.bucket, on_retries=lambda n: None))
    holder.acquire()
    time.sleep(4)
    assert len(answers_lost) == 2
    assert not holder.lost
    holder.ensure_held()
    holder.release()
    assert store.get(KEY) is None


def test_the_same_pods_previous_container_is_not_waited_for(
    store: Store, lease: Callable[..., TrainingLease], capsys: pytest.CaptureFixture[str]
) -> None:
    """Kubernetes restarts a container in place only after it exited: its lease is taken at once."""
    crashed = lease("pod-a")
    crashed.acquire()
    crashed.abandon()
    other, restarted = lease("pod-b", timeout=1.0), lease("pod-a", timeout=1.0)
    with pytest.raises(LeaseUnavailable):
        other.acquire()  # another pod waits: the lease is fresh
    restarted.acquire()
    assert not restarted.lost and restarted.holder == holder_in_store(store) == "pod-a"
    [waited] = events(capsys.readouterr().out, "lease_waited")
    assert (waited["holder"], waited["how"], waited["held_by"]) == ("pod-a", "restarted", "pod-a")
    restarted.release()


def test_the_stale_time_must_leave_room_for_renewals(store: Store) -> None:
    with pytest.raises(ValueError, match="stale_seconds"):
        TrainingLease(store, KEY, run_id="r", holder="h", stale_seconds=2, timeout_seconds=1)


def test_lease_settings_are_checked_at_start(fresh: Pipeline) -> None:
    result = fresh.run("ingest", "r", LEASE_STALE_SECONDS="1")
    assert result.code == 2 and "LEASE_STALE_SECONDS" in result.stderr
    assert fresh.run("ingest", "r", LEASE_TIMEOUT_SECONDS="soon").code == 2


# --- the train step as processes -------------------------------------------------------

STEPS = "500"  # about 10 s of training: long enough for a second attempt to start beside the first
EVERY = "100"


class Running:
    """A started step process whose stdout events are collected as they come."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.events: list[dict] = []
        self._eof = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                with self._changed:
                    self.events.append(json.loads(line))
                    self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    def wait_for(self, kind: str, when: Callable[[dict], bool] = lambda e: True, timeout: float = 90) -> dict:
        """The first event of ``kind`` that satisfies ``when``; fails if the process ends first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for event in self.events:
                    if event["event"] == kind and when(event):
                        return event
                if self._eof:
                    raise AssertionError(f"no {kind} before the process ended: {self.finish().stderr}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"no {kind} within {timeout} s")
                self._changed.wait(0.5)

    def finish(self, timeout: float = 120) -> Result:
        self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        stderr = self.proc.stderr.read() if self.proc.stderr else ""
        return Result(self.proc.returncode, list(self.events), stderr)


@pytest.fixture
def started(prepared: Pipeline) -> Iterator[Callable[..., Running]]:
    """Start train processes on the prepared day; any still running at the end is killed."""
    procs: list[Running] = []

    def start(run_id: str, pod: str, **env: str) -> Running:
        running = Running(prepared.start("train", run_id, **{"POD_NAME": pod, "TRAIN_STEPS": STEPS,
                                                            "CHECKPOINT_EVERY": EVERY, **env}))
        procs.append(running)
        return running

    yield start
    for running in procs:
        if running.proc.poll() is None:
            running.proc.kill()
        running.proc.communicate()


@pytest.fixture(scope="module")
def reference_sha(prepared: Pipeline) -> str:
    """Final parameters of an uninterrupted run with the same settings."""
    result = prepared.run("train", "lease-reference", TRAIN_STEPS=STEPS, CHECKPOINT_EVERY=EVERY)
    assert result.code == 0, result.stderr
    return str(result.of("training_completed")[0]["params_sha256"])


def test_second_train_waits_for_the_first_and_finds_the_model_published(
    prepared: Pipeline, started: Callable[..., Running]
) -> None:
    first = started("lease-two", "pod-a")
    first.wait_for("training_started")
    second = started("lease-two", "pod-b")
    assert second.wait_for("lease_waiting")["held_by"] == "pod-a"
    one, two = first.finish(), second.finish()
    assert one.code == 0 and two.code == 0, (one.stderr, two.stderr)
    waited = two.of("lease_waited")[0]
    assert (waited["how"], waited["held_by"], waited["holder"]) == ("released", "pod-a", "pod-b")
    assert waited["ts"] >= one.of("training_completed")[0]["ts"]  # released after the model was published
    assert two.of("step_skipped")[0]["reason"] == "model already published"
    assert not two.of("checkpoint_restored") and not two.of("train_step") and not two.of("artifact_written")
    assert prepared.keys("runs/reference/2024-03-01/lease-two/train.lease") == []  # released


def test_sigkilled_holder_leaves_a_lease_the_waiter_takes_once_stale(
    prepared: Pipeline, started: Callable[..., Running], reference_sha: str
) -> None:
    stale = 5.0
    first = started("lease-kill", "pod-a", LEASE_STALE_SECONDS=str(stale))
    first.wait_for("training_started")
    second = started("lease-kill", "pod-b", LEASE_STALE_SECONDS=str(stale))
    second.wait_for("lease_waiting")
    first.wait_for("checkpoint_saved", lambda e: e["step"] >= 100)
    first.proc.kill()
    killed = time.time()
    one = first.finish()
    assert one.code == -signal.SIGKILL
    saved = [e["step"] for e in one.of("checkpoint_saved")]

    two = second.finish()
    assert two.code == 0, two.stderr
    waited = two.of("lease_waited")[0]
    assert (waited["how"], waited["held_by"]) == ("stale", "pod-a")
    # Not before the lease was stale by the S3 server's clock (whole seconds, renewals every
    # second), and not long after; the bounds are generous: behaviour, not speed.
    assert stale - 3 <= waited["ts"] - killed <= stale + 20
    restored = two.of("checkpoint_restored")[0]["step"]
    assert restored >= saved[-1]
    assert two.of("training_started")[0]["start_step"] == restored
    assert two.of("training_completed")[0]["params_sha256"] == reference_sha


def test_stalled_holder_whose_lease_was_broken_stops_non_zero_and_writes_nothing_more(
    prepared: Pipeline, started: Callable[..., Running], reference_sha: str
) -> None:
    """The holder stalls (SIGSTOP: a long pause, a partition) past the stale time; the waiting
    attempt breaks the lease and trains. When the holder wakes up, its next renewal finds the
    lease broken: it stops with exit 4 and writes no checkpoint and no model."""
    run_prefix = "runs/reference/2024-03-01/lease-stalled"
    first = started("lease-stalled", "pod-a")
    first.wait_for("training_started")
    second = started("lease-stalled", "pod-b")
    second.wait_for("lease_waiting")
    # Stop it once a checkpoint landed. The events are read behind the process, so it may have saved
    # later ones by the time it stops: its last checkpoint is read from its events once it has ended.
    first.wait_for("checkpoint_saved", lambda e: e["step"] >= 100)
    first.proc.send_signal(signal.SIGSTOP)
    stopped = time.time()
    try:
        waited = second.wait_for("lease_waited")
        second.wait_for("training_started")
    finally:
        first.proc.send_signal(signal.SIGCONT)
    assert (waited["how"], waited["held_by"]) == ("stale", "pod-a")

    one = first.finish(timeout=60)
    assert one.code == EXIT_FENCED, one.stderr
    assert "lost" in one.stderr and "pod-b" in one.stderr
    [lost] = one.of("lease_lost")
    assert lost["holder"] == "pod-a" and "broken by pod-b" in lost["reason"]
    assert not one.of("training_completed") and not one.of("step_finished")
    written = [e for e in one.events if e["event"] in ("checkpoint_saved", "artifact_written")]
    assert [e for e in written if e["ts"] > stopped] == [], written  # nothing more once it woke up
    last = one.of("checkpoint_saved")[-1]
    assert last["step"] >= 100

    two = second.finish()
    assert two.code == 0, two.stderr
    assert two.of("checkpoint_restored")[0]["step"] == last["step"]
    assert two.of("training_completed")[0]["params_sha256"] == reference_sha
    assert "exists with different content" not in two.stderr  # the loser wrote no checkpoint in its way
    manifests = {k for k in prepared.keys(f"{run_prefix}/checkpoints/") if k.endswith("MANIFEST.json")}
    assert manifests == {e["manifest_key"] for e in one.of("checkpoint_saved") + two.of("checkpoint_saved")}
    assert prepared.keys(f"{run_prefix}/train.lease") == []  # released by the winner


def test_replacement_started_during_the_grace_period_restores_the_sigterm_checkpoint(
    prepared: Pipeline, started: Callable[..., Running], reference_sha: str
) -> None:
    """Kubernetes 1.20: the replacement pod starts as soon as the old one is deleted, while
    the old one still saves its SIGTERM checkpoint. It must restore exactly that checkpoint."""
    first = started("lease-term", "pod-a")
    first.wait_for("training_started")
    second = started("lease-term", "pod-b")  # already running when the old pod gets SIGTERM
    second.wait_for("lease_waiting")
    first.proc.send_signal(signal.SIGTERM)
    one = first.finish()
    assert one.code == EXIT_TERMINATED, one.stderr
    sigterm_step = one.of("sigterm_received")[0]["step"]
    assert 0 < sigterm_step < int(STEPS)
    saved = one.of("checkpoint_saved")[-1]
    assert (saved["step"], saved["reason"]) == (sigterm_step, "sigterm")

    two = second.finish()
    assert two.code == 0, two.stderr
    waited = two.of("lease_waited")[0]
    assert (waited["how"], waited["held_by"]) == ("released", "pod-a")
    assert waited["ts"] >= saved["ts"]  # the lease was released only after the SIGTERM manifest
    restored = two.of("checkpoint_restored")[0]
    assert restored["step"] == sigterm_step and restored["manifest_key"] == saved["manifest_key"]
    assert two.of("training_started")[0]["start_step"] == sigterm_step
    assert two.of("train_step")[0]["step"] == sigterm_step + 1
    assert two.of("training_completed")[0]["params_sha256"] == reference_sha
