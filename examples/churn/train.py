"""train: a plain PyTorch loop that survives its pod being deleted, evicted or killed.

- Checkpoints every CHECKPOINT_EVERY steps, on SIGTERM (then exit 143) and at the end, each a complete
  training state (training_state.py) written to S3 with its manifest last (checkpoints.py).
- A new attempt restores the latest complete checkpoint; with the same seed it ends with parameters
  bit-identical to an uninterrupted run (deterministic algorithms, one thread, all RNG states and the
  data position in the checkpoint).
- One attempt of a run trains at a time (train_lock.py), so a replacement pod restores the checkpoint
  its predecessor is still saving.
- Output: ``<pipeline>/runs/<run>/weights.pt``, written once; when it exists the step is skipped.
"""

from __future__ import annotations

import io
import signal
import sys
import threading
import time
from types import FrameType

import torch

import mlchaos_probe as probe
from mlchaos_probe import digest

import features
import net
from checkpoints import CheckpointStore, LocalCheckpoints, S3Checkpoints, serialize
from runner import EXIT_FAILED, EXIT_OK, EXIT_SIGTERM, Step, run
from train_lock import TrainingLock
from training_state import Sampler, Trainer


def train(step: Step) -> int:
    c, keys, bucket = step.config, step.keys, step.bucket
    if bucket.exists(keys.trained_weights()):
        step.skip("trained weights already published")
        return EXIT_OK
    stop = _stop_on_sigterm()

    body = bucket.get(keys.features("train"))
    if body is None:
        print(f"churn: {keys.features('train')} is missing; run the prepare step first", file=sys.stderr)
        return EXIT_FAILED
    x, y = features.from_bytes(body.body)
    device = torch.device(c.device)
    x, y = x.to(device), y.to(device)
    trainer = _fresh_trainer(step, rows=len(x), inputs=int(x.shape[1]), device=device)
    model, optimizer, scheduler = trainer.model, trainer.optimizer, trainer.scheduler
    store: CheckpointStore = (LocalCheckpoints(c.scratch_dir, c.run_id) if c.careless
                              else S3Checkpoints(bucket, keys, c.run_id))

    lock = TrainingLock(bucket, keys.train_lock(), holder=c.holder)
    if not lock.acquire(stop):
        return EXIT_SIGTERM  # stopped while waiting: nothing trained, nothing to save
    try:
        if bucket.exists(keys.trained_weights()):  # the attempt we waited for finished the run
            step.skip("trained weights already published")
            return EXIT_OK
        done = 0
        loaded = store.latest()
        if loaded is not None:
            try:
                done = trainer.apply(loaded.state)
            except ValueError as error:
                print(f"churn: cannot resume from {loaded.manifest_key}: {error}", file=sys.stderr)
                return EXIT_FAILED
            step.metrics.checkpoint_restored(loaded.seconds)
            probe.checkpoint_restored(run_id=c.run_id, step=done, manifest_key=loaded.manifest_key,
                                      seconds=round(loaded.seconds, 6), components=trainer.components())
        probe.training_started(run_id=c.run_id, start_step=done, total_steps=c.train_steps,
                               checkpoint_every=c.checkpoint_every, seed=c.seed, device=str(device))
        loss_fn = torch.nn.BCEWithLogitsLoss()
        model.train()
        while done < c.train_steps:
            if lock.lost:
                print("churn: another attempt took over this run's training; stopping without writing",
                      file=sys.stderr)
                return EXIT_FAILED
            if stop.is_set():  # between two steps: the state is exactly `done` steps, nothing is lost
                probe.sigterm_received(run_id=c.run_id, step=done)
                _checkpoint(step, store, trainer, done, "sigterm")
                return EXIT_SIGTERM
            batch = trainer.sampler.next_indices().to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[batch]).squeeze(1), y[batch])
            loss.backward()
            optimizer.step()
            scheduler.step()
            done += 1
            probe.train_step(run_id=c.run_id, step=done, loss=round(float(loss.item()), 6))
            step.metrics.step_done(done)
            if done % c.digest_every == 0:
                probe.digest_trail(run_id=c.run_id, step=done, components=trainer.components())
            if done % c.checkpoint_every == 0 and done < c.train_steps:
                _checkpoint(step, store, trainer, done, "periodic")
        _checkpoint(step, store, trainer, done, "final")
        params = digest.params_sha256(model)
        _publish_weights(step, model, params, inputs=int(x.shape[1]))
        probe.training_completed(run_id=c.run_id, step=done, params_sha256=params)
        return EXIT_OK
    finally:
        lock.release()  # after the last manifest: a waiting attempt restores exactly that checkpoint


def _fresh_trainer(step: Step, *, rows: int, inputs: int, device: torch.device) -> Trainer:
    """Model, AdamW, cosine schedule and sampler as at step 0 (seeded: every attempt builds the same)."""
    c = step.config
    torch.manual_seed(c.seed)  # the initial weights
    model = net.build(inputs).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=c.learning_rate, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=c.train_steps,
                                                           eta_min=c.learning_rate / 20)
    return Trainer(model=model, optimizer=optimizer, scheduler=scheduler,
                   sampler=Sampler(rows, min(net.BATCH_SIZE, rows), c.seed), total_steps=c.train_steps)


def _checkpoint(step: Step, store: CheckpointStore, trainer: Trainer, done: int, reason: str) -> None:
    """Save one checkpoint; a failure is counted and reported, never fatal (the next one covers it)."""
    c = step.config
    started = time.perf_counter()
    components = trainer.components()
    try:
        saved = store.save(done, serialize(trainer.capture(done)))
    except Exception as error:  # S3 or disk: training goes on, the next checkpoint covers it
        step.metrics.checkpoint_failed()
        print(f"churn: checkpoint of step {done} failed: {error}", file=sys.stderr, flush=True)
        return
    seconds = time.perf_counter() - started
    step.metrics.checkpoint_saved(seconds)
    if saved.created:
        step.wrote("checkpoint", saved.manifest_key, f"checkpoint/{c.run_id}/{done}")
    probe.checkpoint_saved(run_id=c.run_id, step=done, manifest_key=saved.manifest_key, seconds=round(seconds, 6),
                           bytes=saved.bytes, reason=reason, components=components)


def _publish_weights(step: Step, model: torch.nn.Module, params: str, *, inputs: int) -> None:
    c, key = step.config, step.keys.trained_weights()
    buffer = io.BytesIO()
    torch.save({"state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "inputs": inputs,
                "hidden": net.HIDDEN, "params_sha256": params, "run_id": c.run_id, "date": c.date,
                "seed": c.seed, "steps": c.train_steps}, buffer)
    if step.bucket.put_new(key, buffer.getvalue()):
        step.wrote("weights", key, f"weights/{c.run_id}")


def _stop_on_sigterm() -> threading.Event:
    """SIGTERM only sets a flag: the loop checkpoints between two steps and exits 143."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    return stop


if __name__ == "__main__":
    run("train", train)
