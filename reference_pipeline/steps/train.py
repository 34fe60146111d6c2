"""train: deterministic, resumable training of the MLP.

THE property: with the same seed, a run interrupted any number of times (SIGTERM
at any step, SIGKILL at any moment) ends with parameters bit-identical to an
uninterrupted run. It holds because (1) deterministic algorithms and a fixed
thread count make every step a pure function of the state before it, (2) the
checkpoint holds the full state (model, optimizer, LR scheduler, every RNG, data
position, step), and (3) the batch of a step is derived from the step itself
(a permutation seeded by (SEED, epoch)), not from how many steps this process ran.
"""

from __future__ import annotations

import io
import os
import random
import signal
import threading
import time
from dataclasses import asdict
from types import FrameType
from typing import Any

import numpy as np
import torch

from mlchaos_probe import digest, environment
from mlchaos_probe import events as probe
from mlchaos_probe.crash_points import crash_point

from .. import broken, data, numerics
from ..checkpoint import Checkpointer, serialize
from ..errors import Fenced, Terminated, UserError
from ..lease import TrainingLease
from ..model import SPECS, build
from . import features
from .context import Context


def run(ctx: Context) -> None:
    """Train to TRAIN_STEPS from the latest complete checkpoint, then publish model.pt.

    Fenced by the run's training lease (``lease.py``): acquired before any restore
    (waiting while another attempt of the run holds it), renewed while training,
    released only after the SIGTERM checkpoint or the model is written; an attempt
    that loses it stops with ``LeaseLost`` (exit 4) and writes nothing more.
    """
    c = ctx.config
    if ctx.store.exists(c.model_key):
        ctx.skip("model already published")
        return
    # Before the determinism settings below: the same details the process reported as its environment.
    env_fingerprint, env_details = environment.fingerprint()
    env_record = {"fingerprint": env_fingerprint, "details": env_details}
    stop = _install_sigterm_flag(ignore=broken.IGNORE_NOTICE in c.broken)
    device = _deterministic_device(c.device)
    numerics.apply_matmul_precision()  # again: the CUDA determinism settings above reset it
    (train_x, train_y), _ = data.split(features.load(ctx))
    spec = SPECS[c.model_size]
    # Every RNG the checkpoint holds starts from SEED, so the state digests of two runs of a seed are equal
    # step by step (an unseeded numpy or python RNG would make each process's trail differ).
    random.seed(c.seed)
    np.random.seed(c.seed)
    torch.manual_seed(c.seed)  # initial weights
    model = build(spec, train_x.shape[1]).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.learning_rate)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=c.train_steps)
    xs, ys = torch.from_numpy(train_x).to(device), torch.from_numpy(train_y).to(device)
    batches_per_epoch = len(xs) // spec.batch_size  # the last partial batch is dropped
    # Taken after the start-up above, so that a replacement's start-up overlaps the
    # old attempt's SIGTERM save (or its lease going stale after a SIGKILL).
    lease = TrainingLease(ctx.store, c.lease_key, run_id=c.run_id, holder=c.lease_holder,
                          stale_seconds=c.lease_stale_seconds, timeout_seconds=c.lease_timeout_seconds)
    checkpoints = Checkpointer(c, ctx.store, ctx.metrics, fence=lease.ensure_held)
    lease.acquire(stop)
    try:
        if ctx.store.exists(c.model_key):  # the attempt we waited for finished the run
            ctx.skip("model already published")
            lease.release()
            return

        step = 0
        if broken.IGNORE_CHECKPOINT not in c.broken:
            restored = checkpoints.restore_latest()
            if restored is not None and broken.NO_FINGERPRINT_CHECK not in c.broken:
                _refuse_drift(restored.state, restored.step, env_record, run_id=c.run_id, lease=lease)
            if restored is not None:
                step = _load_state(restored.state, model, optimizer, scheduler, c.train_steps, batches_per_epoch)
                # Digests of the live objects after loading: what training actually continues from.
                probe.checkpoint_restored(
                    run_id=c.run_id, step=restored.step, manifest_key=restored.manifest_key,
                    seconds=round(restored.seconds, 6),
                    components=_components(model, optimizer, scheduler, digest.rng_snapshot(), step,
                                           batches_per_epoch))
        probe.training_started(run_id=c.run_id, start_step=step, total_steps=c.train_steps,
                               checkpoint_every=c.checkpoint_every, seed=c.seed, device=str(device))

        loss_fn = torch.nn.BCEWithLogitsLoss()
        order, order_epoch = torch.empty(0, dtype=torch.long), -1
        model.train()
        while step < c.train_steps:
            lease.check()  # lost: stop here, nothing more is written
            if stop.is_set():
                # Between steps: the state is exactly "step steps done", so nothing is lost.
                probe.sigterm_received(run_id=c.run_id, step=step)
                _save(checkpoints, model, optimizer, scheduler, step, c.train_steps, batches_per_epoch,
                      reason="sigterm", background=False, env=env_record)
                lease.check()
                lease.release()  # after the manifest: a waiting attempt restores this checkpoint
                raise Terminated(f"SIGTERM at step {step}; checkpoint saved")
            epoch, batch = divmod(step, batches_per_epoch)
            if epoch != order_epoch:
                generator = torch.Generator().manual_seed(c.seed * 1_000_003 + epoch)
                order, order_epoch = torch.randperm(len(xs), generator=generator).to(device), epoch
            index = order[batch * spec.batch_size : (batch + 1) * spec.batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(xs[index]).squeeze(1), ys[index])
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            probe.train_step(run_id=c.run_id, step=step, loss=float(loss.item()))
            ctx.metrics.step_done(step)
            if step % c.checkpoint_every == 0:
                _save(checkpoints, model, optimizer, scheduler, step, c.train_steps, batches_per_epoch,
                      reason="periodic", background=True, env=env_record)
            if step % c.digest_every == 0:
                probe.digest_trail(run_id=c.run_id, step=step,
                                   components=_components(model, optimizer, scheduler, digest.rng_snapshot(), step,
                                                          batches_per_epoch))
        checkpoints.wait()

        params_sha256 = digest.params_sha256(model)
        buffer = io.BytesIO()
        torch.save({"spec": asdict(spec), "inputs": int(train_x.shape[1]), "step": step,
                    "params_sha256": params_sha256,
                    "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}, buffer)
        lease.ensure_held()
        if ctx.store.publish(c.model_key, buffer.getvalue()):  # 412: an earlier attempt published it
            ctx.published("model", c.model_key, f"model/{c.run_id}")
        crash_point("train.model-published", run_id=c.run_id)
        lease.release()
    except (Terminated, Fenced):
        raise  # released after the SIGTERM checkpoint; a lost lease is not ours to release
    except BaseException:
        lease.abandon()  # a checkpoint may still be in flight: let the lease go stale instead
        raise
    probe.training_completed(run_id=c.run_id, step=step, params_sha256=params_sha256)


def _install_sigterm_flag(*, ignore: bool = False) -> threading.Event:
    """SIGTERM only sets a flag; the loop stops between two steps, after saving.
    ``ignore`` (broken variant ignore-notice): SIGTERM does nothing; only SIGKILL ends training."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        if not ignore:
            stop.set()

    signal.signal(signal.SIGTERM, handler)
    return stop


def _deterministic_device(name: str) -> torch.device:
    """The device, with every source of run-to-run nondeterminism turned off."""
    auto = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(auto if name == "auto" else name)
    # cuBLAS needs this set before its first use to be deterministic.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    # Reductions split differently across thread counts; one thread makes CPU steps
    # reproducible whatever the machine's core count.
    torch.set_num_threads(1)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.backends.cuda.matmul.allow_tf32 = False
    return device


def _save(checkpoints: Checkpointer, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
          step: int, total_steps: int, batches_per_epoch: int, *, reason: str, background: bool,
          env: dict[str, Any] | None = None) -> None:
    """Snapshot the state after ``step`` steps, digest exactly that snapshot, and hand both to ``checkpoints``.
    ``env``: the environment fingerprint record the state is written under (kept in it as ``environment``)."""
    started = time.perf_counter()
    rng = digest.rng_snapshot()
    state = _state(model, optimizer, scheduler, step, total_steps, batches_per_epoch, rng)
    if env is not None:
        state["environment"] = env
    payload = serialize(state)
    # Before training goes on: the digested tensors are the ones just serialized, not yet changed.
    components = digest.state_digests(model=model, optimizer=state["optimizer"], scheduler=state["scheduler"],
                                      rng=rng, data_position=state["data"])
    checkpoints.save(step, payload, reason=reason, serialize_seconds=time.perf_counter() - started,
                     background=background, components=components)


def _refuse_drift(state: dict[str, Any], step: int, env: dict[str, Any], *, run_id: str,
                  lease: TrainingLease) -> None:
    """Raise ``UserError`` (after an ``environment_refused`` event, with the lease released: nothing was
    written) when the checkpoint was written under another environment fingerprint than ``env``. A
    checkpoint without a recorded environment (written before fingerprints were kept) is accepted."""
    saved = state.get("environment")
    if not isinstance(saved, dict) or saved.get("fingerprint") in (None, env["fingerprint"]):
        return
    before, now = dict(saved.get("details") or {}), dict(env["details"])
    differing = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
    probe.environment_refused(run_id=run_id, step=step, fingerprint=env["fingerprint"],
                              checkpoint_fingerprint=str(saved["fingerprint"]), differing=",".join(differing))
    lease.release()
    changes = "; ".join(f"{k}: {before.get(k, '(unset)')} -> {now.get(k, '(unset)')}" for k in differing)
    raise UserError(f"refusing to resume the checkpoint of step {step}: it was written under another environment "
                    f"({changes}); run the image and settings it was written under, or start a new RUN_ID")


def _components(model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, rng: dict[str, object],
                step: int, batches_per_epoch: int) -> dict[str, str]:
    """The digests of the live training state after ``step`` steps (as ``_save`` digests a snapshot)."""
    epoch, batch = divmod(step, batches_per_epoch)
    return digest.state_digests(model=model, optimizer=optimizer, scheduler=scheduler, rng=rng,
                                data_position={"epoch": epoch, "batch": batch})


def _state(model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, step: int,
           total_steps: int, batches_per_epoch: int, rng: dict[str, Any]) -> dict[str, Any]:
    """The full training state after ``step`` steps (tensors only where torch.load(weights_only) needs).

    ``rng``: :func:`mlchaos_probe.digest.rng_snapshot` of this moment.
    """
    np_name, np_key, np_pos, np_has_gauss, np_gauss = rng["numpy"]
    epoch, batch = divmod(step, batches_per_epoch)
    return {
        "step": step,
        "total_steps": total_steps,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": {
            "torch": rng["torch"],
            "cuda": rng.get("cuda", []),
            "numpy": (np_name, torch.from_numpy(np_key.astype(np.int64)), np_pos, np_has_gauss, np_gauss),
            "python": rng["python"],
        },
        "data": {"epoch": epoch, "batch": batch},  # the next batch to train on
    }


def _load_state(state: dict[str, Any], model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                total_steps: int, batches_per_epoch: int) -> int:
    """Restore everything ``_state`` saved; returns the step to continue from."""
    if state["total_steps"] != total_steps:
        raise UserError(f"the checkpoint was written with TRAIN_STEPS={state['total_steps']}, not {total_steps}; "
                        "keep TRAIN_STEPS fixed for a run id or use a new RUN_ID")
    step = int(state["step"])
    if (state["data"]["epoch"], state["data"]["batch"]) != divmod(step, batches_per_epoch):
        raise UserError("the checkpoint's data position does not match this data set; use a new RUN_ID")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rng = state["rng"]
    torch.set_rng_state(rng["torch"])
    if rng["cuda"]:
        torch.cuda.set_rng_state_all(rng["cuda"])
    np_name, np_key, np_pos, np_has_gauss, np_gauss = rng["numpy"]
    np.random.set_state((np_name, np_key.numpy().astype(np.uint32), np_pos, np_has_gauss, np_gauss))
    random.setstate(rng["python"])
    return step
