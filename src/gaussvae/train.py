"""Stage 'train': the VAE training loop with beta warm-up, early stopping and exact resume.

One epoch, in named steps: schedule (beta and the sample order), ``train_epoch`` (the steps),
validate (z = mu), ``RunState.plateau`` (learning-rate cuts, early stopping, the kept model),
log (TensorBoard and the history TSV), checkpoint. Every epoch starts from seeds made of
(train.seed, epoch), so a run resumed from its checkpoint ends with the same weights and metrics
as an uninterrupted one.

Model selection happens at the run's beta: learning-rate cuts, early stopping and the kept model
consider only epochs trained at the full ``max_beta`` (after the warm-up), and watch the
validation RECONSTRUCTION loss. An epoch inside the warm-up has a smaller KL weight, so its
model is not a model of the beta the run is named after; a run whose budget ends inside the
warm-up keeps its last epoch and says so.

Under torchrun (DistributedDataParallel, one process per GPU) every rank must take the same
decisions at the same step, or some rank waits forever in a collective the others never join:
rank 0 alone validates, cuts the learning rate, keeps the model and decides to stop, and
broadcasts the learning rate and the decision; a non-finite loss on any rank is seen by every
rank in the step's summed losses before the backward pass, and all raise together; rank 0 reads
the checkpoint and sends it to the others. Rank 0 writes every file.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

from gaussvae.atomic import atomic_path, rounded, write_json
from gaussvae.distributed import Dist, setup_distributed
from gaussvae.errors import TrainingDiverged
from gaussvae.jobs import TrainingJob, TrainingSet, gaussian_job
from gaussvae.loss import Objective, beta_at, type_losses
from gaussvae.model import VAE, count_parameters
from gaussvae.normalize import NormStats
from gaussvae.params import Params
from gaussvae.scores import split_scores
from gaussvae.store import GaussianSet, ImageSet

log = logging.getLogger(__name__)


def history_columns(types: dict[str, slice]) -> tuple[str, ...]:
    """One row per epoch in metrics/train_history.tsv (DVC plots) and in TensorBoard."""
    return ("epoch", "beta", "lr", "train_loss", "train_recon", "train_kl", "val_recon",
            "val_kl", *(f"val_{t}" for t in types), "val_active_units",
            *(f"train_{t}" for t in types))


@dataclass(frozen=True)
class TrainPaths:
    model: Path  # best weights + config + normalization stats
    checkpoint: Path  # everything needed to resume
    log_dir: Path  # TensorBoard event files
    history: Path  # per-epoch TSV (DVC plots)
    metrics: Path  # metrics/train.json


@dataclass
class RunState:
    """What an interrupted run needs to continue exactly, besides model and optimizer."""

    epoch: int = 0  # epochs completed
    best: float = math.inf  # best validation reconstruction so far
    bad_epochs: int = 0  # epochs since it improved
    history: list[dict] = field(default_factory=list)
    best_state: dict | None = None  # weights of the best epoch, on the CPU

    def plateau(self, val_recon: float, model: VAE, patience: int) -> bool:
        """Keep the model if it is the best so far; True when training should stop."""
        if val_recon < self.best:
            self.best, self.bad_epochs = val_recon, 0
            self.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= patience


# What train_step returns, summed over ranks: the step's total loss, reconstruction and mean
# KL, then its per-channel MSE.
STEP_STATS = ("loss", "recon", "kl")


def train_step(net: torch.nn.Module, optimizer: torch.optim.Optimizer,
               scaler: torch.amp.GradScaler, batch: torch.Tensor,
               target_pixels: torch.Tensor | None, objective: Objective, beta: float,
               amp: bool, dist: Dist | None = None) -> torch.Tensor:
    """One optimizer step on a batch (B, N, 8) in model units; returns (*STEP_STATS,
    per-channel MSE) of the step, summed over ranks.

    Raises TrainingDiverged (without stepping) when the loss is NaN or infinite on ANY rank: the
    sums are taken before the backward pass, so every rank sees the same non-finite sum and
    raises at the same step, where a rank raising alone would leave the others waiting in the
    gradient all-reduce. KL is float32 (model.DiagonalGaussian.kl), so under mixed precision a
    large mu overflows only gradients, which the scaler skips, not the loss.
    """
    dist = dist or Dist()
    with torch.autocast(device_type=batch.device.type, dtype=torch.float16, enabled=amp):
        pred, post = net(batch)
    kl = post.kl()
    parts = objective(pred.float(), batch, kl, beta, target_pixels)
    stats = dist.all_sum(torch.cat([parts.total.detach().reshape(1),
                                    parts.recon.detach().reshape(1),
                                    kl.detach().mean().reshape(1), parts.per_channel.detach()]))
    if not bool(torch.isfinite(stats).all()):
        where = f" on one of {dist.world} processes" if dist.world > 1 else ""
        raise TrainingDiverged(f"loss became {float(stats[0])}{where}")
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(parts.total).backward()
    scaler.step(optimizer)
    scaler.update()
    return stats


def train_epoch(net: torch.nn.Module, optimizer: torch.optim.Optimizer,
                scaler: torch.amp.GradScaler, train_set: TrainingSet, order: torch.Tensor,
                objective: Objective, beta: float, batch_size: int, amp: bool, epoch: int,
                dist: Dist | None = None) -> dict[str, float]:
    """One pass over the samples ``order`` of ``train_set`` in batches; loss, recon, KL and
    per-type train losses, each the mean over every step of every rank (so the logged numbers
    describe the whole epoch, not rank 0's share)."""
    dist = dist or Dist()
    net.train()
    device = next(net.parameters()).device
    channels = max(s.stop for s in objective.types.values())
    sums = torch.zeros(len(STEP_STATS) + channels, dtype=torch.float64, device=device)
    n_steps = 0
    for step, start in enumerate(range(0, len(order), batch_size)):
        x, pixels = train_set.batch(order[start:start + batch_size].to(device))
        try:
            sums += train_step(net, optimizer, scaler, x, pixels, objective, beta, amp, dist)
        except TrainingDiverged as err:
            raise TrainingDiverged(
                f"{err} at epoch {epoch + 1}, step {step + 1}; lower train.learning_rate or "
                "check data/gaussians.h5 for NaN/inf") from None
        n_steps += 1
    means = sums / (n_steps * dist.world)
    types = type_losses(means[len(STEP_STATS):], objective.types)
    return {**{k: float(means[i]) for i, k in enumerate(STEP_STATS)},
            **{k: float(v) for k, v in types.items()}}


def derived_seed(*parts: int | str) -> int:
    """A 63-bit seed from ``parts`` (e.g. seed, epoch, rank): distinct tuples give unrelated
    streams, where arithmetic like seed * K + epoch collides."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def epoch_order(n: int, seed: int, epoch: int, rank: int, world: int,
                symmetries: int = 1) -> torch.Tensor:
    """This rank's samples for ``epoch``, and the seed of its noise.

    An epoch visits each of the n examples once, in a shuffled order, under one of its
    ``symmetries`` drawn at random (sample example * symmetries + k, datasets.py): the
    augmentation changes what an epoch shows, not how long it is. Shuffle and draws come from
    (seed, epoch) alone, so every rank cuts the same sequence into disjoint shares (every G-th
    sample); the global RNG, which draws the reparameterization noise, is seeded from
    (seed, epoch, rank), so ranks draw different noise and a resumed run draws what an
    uninterrupted one does. Each share has the same length: under DDP every rank must run the
    same number of steps (one all-reduce per step).
    """
    shuffle = torch.Generator().manual_seed(derived_seed(seed, epoch, "order"))
    perm = torch.randperm(n, generator=shuffle)
    if symmetries > 1:
        perm = perm * symmetries + torch.randint(symmetries, (n,), generator=shuffle)
    torch.manual_seed(derived_seed(seed, epoch, "noise", rank))
    return perm[: len(perm) - len(perm) % world][rank::world]


def history_row(epoch: int, beta: float, lr: float, train: dict, val: dict,
                types: dict[str, slice]) -> dict:
    row = {"epoch": epoch + 1, "beta": beta, "lr": lr, "train_loss": train["loss"],
           "train_recon": train["recon"], "train_kl": train["kl"],
           "val_recon": val["loss"]["total"], "val_kl": val["kl_nats"],
           **{f"val_{t}": val["loss"][t] for t in types},
           "val_active_units": val["active_units"],
           **{f"train_{t}": train[t] for t in types}}
    return {c: row[c] for c in history_columns(types)}


def train(params: Params, job: TrainingJob, paths: TrainPaths, dist: Dist,
          on_epoch: Callable[[int, dict], None] | None = None) -> dict:
    """Train (or resume) ``job``'s model on ``dist.device``; writes model, checkpoint, logs,
    history; returns metrics (on rank 0; {} on the other ranks under torchrun)."""
    t = params.train
    device = dist.device
    objective, x_val, types = job.objective, job.x_val, job.objective.types
    torch.manual_seed(t.seed)
    model = job.build().to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=t.learning_rate,
                                  weight_decay=t.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=t.lr_factor, patience=t.lr_patience)
    amp = device.type == "cuda"  # mixed precision where it pays
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    config_hash = _config_hash(params, job, dist.world, device.type)
    state = _resume(paths.checkpoint, config_hash, model, optimizer, scheduler, scaler, dist)
    if state.epoch == 0 and dist.is_main and paths.log_dir.exists():
        shutil.rmtree(paths.log_dir)  # a fresh run must not mix with an old run's events
    net = model
    if dist.grouped:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    writer = SummaryWriter(str(paths.log_dir), purge_step=state.epoch) if dist.is_main else None
    if dist.is_main:
        log.info("model %s: %d parameters", type(model).__name__, count_parameters(model))

    stop = False
    for epoch in range(state.epoch, t.epochs):
        # --- schedule: beta; one shuffle for every rank, each rank its share and its noise
        beta = beta_at(epoch, params.max_beta, t.beta_warmup_epochs)
        order = epoch_order(job.train_set.examples, t.seed, epoch, dist.rank, dist.world,
                            job.train_set.count)
        # --- steps (losses: means over every rank's steps)
        train_losses = train_epoch(net, optimizer, scaler, job.train_set, order, objective,
                                   beta, t.batch_size, amp, epoch, dist)
        # --- validate and decide, on rank 0: learning-rate cut, kept model, early stop
        if dist.is_main:
            val = split_scores(model, x_val, t.loss_weighting, types)
            row = history_row(epoch, beta, optimizer.param_groups[0]["lr"], train_losses, val,
                              types)
            state.history.append(row)
            if beta == params.max_beta:  # selection at the run's beta only
                scheduler.step(row["val_recon"])
                stop = state.plateau(row["val_recon"], model, t.early_stopping_patience)
        # --- every rank follows rank 0
        lr, stop = dist.broadcast((optimizer.param_groups[0]["lr"], stop))
        for group in optimizer.param_groups:
            group["lr"] = lr
        state.epoch = epoch + 1
        # --- log and checkpoint, on rank 0
        if dist.is_main:
            _log_epoch(writer, model, x_val, row)
            if on_epoch is not None:
                on_epoch(epoch + 1, row)
            _save_checkpoint(paths.checkpoint, state, model, optimizer, scheduler, scaler,
                             config_hash, job, params, stop or epoch + 1 == t.epochs)
        if stop:
            if dist.is_main:
                log.info("early stop at epoch %d: no better val recon for %d epochs",
                         epoch + 1, state.bad_epochs)
            break
    if writer is not None:
        writer.close()
    if not dist.is_main:
        return {}
    return _export(paths, state, model, job, params, stop)


def train_gaussian_vae(params: Params, data: GaussianSet, stats: NormStats, paths: TrainPaths,
                       device: torch.device, orders: np.ndarray | None = None,
                       images: ImageSet | None = None,
                       on_epoch: Callable[[int, dict], None] | None = None) -> dict:
    """The train stage in one call: this process's place under torchrun (or alone), the
    Gaussian VAE's job, the loop; returns the metrics ({} on ranks other than 0)."""
    dist = setup_distributed(device)
    try:
        job = gaussian_job(params, data, stats, orders, images, dist.device)
        return train(params, job, paths, dist, on_epoch)
    finally:
        dist.close()


def _config_hash(params: Params, job: TrainingJob, world: int, device_type: str) -> str:
    """What a checkpoint must match to be resumed: the model, params, data, and the launch (the
    number of processes sets the effective batch; the device type sets mixed precision)."""
    blob = json.dumps({"train": params.train.model_dump(), "latent_dim": params.latent_dim,
                       "max_beta": params.max_beta, "model": job.config.to_dict(),
                       "stats": job.saved_stats, "n_train": job.train_set.examples,
                       "world": world, "device": device_type}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def save_torch(path: str | Path, obj: Any) -> None:
    """torch.save, atomically and byte-stable.

    torch.save to a path names the archive's top folder after the file, and atomic_path's
    temporary name is random; saved through a buffer the folder is always "archive", so the
    same weights give the same bytes (and DVC sees an unchanged output).
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def _resume(path: Path, config_hash: str, model: VAE, optimizer: torch.optim.Optimizer,
            scheduler: Any, scaler: torch.amp.GradScaler, dist: Dist) -> RunState:
    """The state of an unfinished run of the same config, data and launch, or a fresh one.

    Rank 0 reads the file and sends it to the others (machines need not share a filesystem);
    the GradScaler's state is part of it, so a resumed mixed-precision run scales as the
    uninterrupted one would.
    """
    ckpt = None
    if dist.is_main and path.exists():
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        if ckpt.get("config_hash") != config_hash or ckpt.get("finished", False):
            ckpt = None
    ckpt = dist.broadcast(ckpt)
    if ckpt is None:
        return RunState()
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    scaler.load_state_dict(ckpt["scaler"])
    log.info("resuming from %s at epoch %d", path, ckpt["epoch"])
    return RunState(ckpt["epoch"], ckpt["best"], ckpt["bad_epochs"], ckpt["history"],
                    ckpt["best_state"])


def _save_checkpoint(path: Path, state: RunState, model: VAE,
                     optimizer: torch.optim.Optimizer, scheduler: Any,
                     scaler: torch.amp.GradScaler, config_hash: str, job: TrainingJob,
                     params: Params, finished: bool) -> None:
    save_torch(path, {
        "config_hash": config_hash, "epoch": state.epoch, "model": model.state_dict(),
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "best": state.best, "bad_epochs": state.bad_epochs, "history": state.history,
        "best_state": state.best_state, "model_config": job.config.to_dict(),
        "params": params.model_dump(), "norm_stats": job.saved_stats, "finished": finished,
    })


def _log_epoch(writer: SummaryWriter, model: VAE, x_val: torch.Tensor, row: dict) -> None:
    """Every history column as a scalar (train/..., val/..., schedule/...) and the latent's
    posterior histograms."""
    step = row["epoch"]
    for column in list(row)[1:]:
        split, _, name = column.partition("_")
        writer.add_scalar(f"{split}/{name}" if name else f"schedule/{split}", row[column], step)
    with torch.no_grad():
        post = model.encode(x_val[:512])
    writer.add_histogram("latent/mu", post.mu.float().cpu(), step)
    writer.add_histogram("latent/logvar", post.logvar.float().cpu(), step)
    writer.flush()


def _export(paths: TrainPaths, state: RunState, model: VAE, job: TrainingJob, params: Params,
            stopped_early: bool) -> dict:
    """Write the kept model, the history TSV and metrics/train.json; return the metrics."""
    at_full_beta = [r for r in state.history if r["beta"] == params.max_beta]
    if state.best_state is None:  # the budget ended inside the warm-up
        log.warning("train.epochs (%d) ends before the beta warm-up completes (%d epochs): the "
                    "kept model is the last epoch's, trained at beta %g, not max_beta %g",
                    params.train.epochs, params.train.beta_warmup_epochs,
                    state.history[-1]["beta"], params.max_beta)
        state.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(state.best_state)
    save_torch(paths.model, {"model_config": job.config.to_dict(),
                             "state_dict": state.best_state, "norm_stats": job.saved_stats,
                             "params": params.model_dump()})
    _write_history(paths.history, state.history)
    weighting, types = params.train.loss_weighting, job.objective.types
    last = state.history[-1]
    best_row = min(at_full_beta, key=lambda r: r["val_recon"]) if at_full_beta else last
    metrics = {
        "epochs_run": last["epoch"],
        "best_epoch": best_row["epoch"],
        "best_epoch_beta": best_row["beta"],
        "final": {"beta": last["beta"], "lr": last["lr"], "train_recon": last["train_recon"],
                  "train_kl": last["train_kl"], "val_recon": last["val_recon"],
                  "val_kl": last["val_kl"]},
        "best": {split: _flat_scores(split_scores(model, x, weighting, types))
                 for split, x in (("train", job.x_train), ("val", job.x_val))},
        "parameters": count_parameters(model),
        "stopped_early": int(stopped_early),
    }
    metrics = rounded(metrics, 6)
    write_json(paths.metrics, metrics)
    return metrics


def _flat_scores(scores: dict) -> dict:
    """Training's view of split scores: recon, kl, per-type losses, active units."""
    losses = {k: v for k, v in scores["loss"].items() if k != "total"}
    return {"recon": scores["loss"]["total"], "kl": scores["kl_nats"], **losses,
            "active_units": scores["active_units"]}


def _write_history(path: Path, history: list[dict]) -> None:
    columns = list(history[0])
    lines = ["\t".join(columns)]
    for row in history:
        lines.append("\t".join(
            str(row[c]) if isinstance(row[c], int) else f"{row[c]:.6g}" for c in columns))
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
