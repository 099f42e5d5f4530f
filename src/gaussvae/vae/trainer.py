"""The training loop: one object that owns a run's moving parts, and the loop over its epochs.

``make_trainer`` builds a ``Trainer`` from a job (job.py: a model, its data and its objective)
and this process's place among torchrun's processes: the model (wrapped in
DistributedDataParallel under torchrun), AdamW, the learning rate's schedule (plateau cuts, or
warm-up and cosine decay per step) and the gradient scaler of mixed precision. The train stage,
the pixel baseline's stage, bench/training_speed.py and bench/gpu_check.py all build it this
way, so a benchmark times exactly what a stage runs.

One epoch, in named steps (``Trainer.fit``): the schedule (beta; the sample order, one shuffle
cut into every process's share), the steps, validation (z = mu), the decisions (learning-rate
cut, kept model, early stop), the log (run_log.py) and the checkpoint (checkpoints.py). Every
epoch's shuffle and noise come from seeds made of (train.seed, epoch, rank), so a run resumed
from its checkpoint ends with the same weights and metrics as an uninterrupted one.

Model selection happens at the run's beta: learning-rate cuts, early stopping and the kept model
consider only epochs trained at the full ``max_beta`` (after the warm-up) and watch the
validation RECONSTRUCTION loss. An epoch inside the warm-up has a smaller KL weight, so its
model is not a model of the beta the run is named after; a run whose budget ends inside the
warm-up keeps its last epoch and says so.

Under torchrun every process must take the same decisions at the same step, or some process
waits forever in a collective the others never join: rank 0 alone validates and decides, and
broadcasts the learning rate and the decision; a non-finite loss on any process is seen by every
process in the step's summed losses before the backward pass, and all raise together; rank 0
reads the checkpoint and sends it to the others. Rank 0 writes every file.
"""

from __future__ import annotations

import hashlib
import logging
import math
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

from gaussvae.core.atomic import rounded, write_json
from gaussvae.core.distributed import Dist
from gaussvae.core.errors import TrainingDiverged
from gaussvae.core.params import Params
from gaussvae.core.store import GaussianSet, ImageSet
from gaussvae.vae.checkpoints import config_hash, load_checkpoint, save_checkpoint
from gaussvae.vae.job import TrainingJob, gaussian_job
from gaussvae.vae.loss import beta_at, type_losses
from gaussvae.vae.model import VAE, count_parameters
from gaussvae.vae.model_file import save_model_file
from gaussvae.vae.normalization import NormStats
from gaussvae.vae.run_log import history_row, log_epoch, write_history
from gaussvae.vae.scores import split_scores

log = logging.getLogger(__name__)

# What a step returns, summed over processes: its total loss, reconstruction and mean KL, then
# its per-channel MSE.
STEP_STATS = ("loss", "recon", "kl")


@dataclass(frozen=True)
class TrainPaths:
    model: Path  # the kept weights, config and normalization statistics (model_file.py)
    checkpoint: Path  # everything needed to resume
    log_dir: Path  # TensorBoard event files
    history: Path  # per-epoch TSV (DVC plots)
    metrics: Path  # metrics/train.json


@dataclass
class RunState:
    """What an interrupted run needs to continue exactly, besides the trainer's state."""

    epoch: int = 0  # epochs completed
    best: float = math.inf  # best validation reconstruction so far
    bad_epochs: int = 0  # epochs since it improved
    history: list[dict] = field(default_factory=list)
    best_state: dict | None = None  # weights of the best epoch, on the CPU

    def plateau(self, val_recon: float, model: VAE, patience: int) -> bool:
        """Keep the model if it is the best so far; True when training should stop."""
        if val_recon < self.best:
            self.best, self.bad_epochs = val_recon, 0
            self.best_state = _cpu_copy(model)
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= patience


def derived_seed(*parts: int | str) -> int:
    """A 63-bit seed from ``parts`` (e.g. seed, epoch, rank): distinct tuples give unrelated
    streams, where arithmetic like seed * K + epoch collides."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def epoch_order(n: int, seed: int, epoch: int, rank: int, world: int,
                symmetries: int = 1) -> torch.Tensor:
    """This rank's samples for ``epoch``.

    An epoch visits each of the n examples once, in a shuffled order, under one of its
    ``symmetries`` drawn at random (sample example * symmetries + k, training_set.py): the
    augmentation changes what an epoch shows, not how long it is. Shuffle and draws come from
    (seed, epoch) alone, so every rank cuts the same sequence into disjoint shares (every G-th
    sample) of the same length: under DDP every rank must run the same number of steps.
    """
    shuffle = torch.Generator().manual_seed(derived_seed(seed, epoch, "order"))
    perm = torch.randperm(n, generator=shuffle)
    if symmetries > 1:
        perm = perm * symmetries + torch.randint(symmetries, (n,), generator=shuffle)
    return perm[: len(perm) - len(perm) % world][rank::world]


def cosine_lr_factor(step: int, total: int, warmup: int) -> float:
    """The learning rate of optimizer step ``step`` (0-based) of ``total``, as a fraction of
    train.learning_rate, under ``lr_schedule: cosine``: a linear rise over the first ``warmup``
    steps, then half a cosine down to 0 at step ``total``. A pure function of the step, so a
    resumed run needs no schedule state."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def seed_noise(seed: int, epoch: int, rank: int) -> None:
    """Seed the global RNG, which draws the reparameterization noise, from (seed, epoch,
    rank): ranks draw different noise, and a resumed run draws what an uninterrupted one does."""
    torch.manual_seed(derived_seed(seed, epoch, "noise", rank))


@dataclass
class Trainer:
    """A run's moving parts (built by ``make_trainer``). ``model`` is the bare model (validated,
    saved); ``net`` is what steps run through (``model``, or its DDP wrapper under torchrun)."""

    params: Params
    job: TrainingJob
    dist: Dist
    model: VAE
    net: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau
    scaler: torch.amp.GradScaler
    amp: bool  # float16 autocast: on CUDA, where it pays

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def step(self, x: torch.Tensor, target_pixels: torch.Tensor | None,
             beta: float) -> torch.Tensor:
        """One optimizer step on a batch in model units; returns (*STEP_STATS, per-channel MSE)
        of the step, summed over processes.

        Raises TrainingDiverged (without stepping) when the loss is NaN or infinite on ANY
        process: the sums are taken before the backward pass, so every process sees the same
        non-finite sum and raises at the same step, where one raising alone would leave the
        others waiting in the gradient all-reduce. KL is float32 (model.DiagonalGaussian.kl),
        so under mixed precision a large mu overflows only gradients, which the scaler skips.
        """
        dist = self.dist
        with torch.autocast(device_type=x.device.type, dtype=torch.float16, enabled=self.amp):
            pred, post = self.net(x)
        kl = post.kl()
        parts = self.job.objective(pred.float(), x, kl, beta, target_pixels)
        stats = dist.all_sum(torch.cat([parts.total.detach().reshape(1),
                                        parts.recon.detach().reshape(1),
                                        kl.detach().mean().reshape(1),
                                        parts.per_channel.detach()]))
        if not bool(torch.isfinite(stats).all()):
            where = f" on one of {dist.world} processes" if dist.world > 1 else ""
            raise TrainingDiverged(f"loss became {float(stats[0])}{where}")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(parts.total).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return stats

    def batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        """This process's batches of ``epoch`` (inputs, render targets or None), with the net in
        training mode and the epoch's noise seeded."""
        t, train_set, dist = self.params.train, self.job.train_set, self.dist
        order = epoch_order(train_set.examples, t.seed, epoch, dist.rank, dist.world,
                            train_set.symmetries)
        seed_noise(t.seed, epoch, dist.rank)
        self.net.train()
        for start in range(0, len(order), t.batch_size):
            yield train_set.batch(order[start:start + t.batch_size].to(dist.device))

    def run_epoch(self, epoch: int, beta: float) -> dict[str, float]:
        """One pass over this process's share: loss, recon, KL and per-type train losses, each
        the mean over every step of every process (the whole epoch, not rank 0's share)."""
        types = self.job.objective.types
        channels = max(s.stop for s in types.values())
        sums = torch.zeros(len(STEP_STATS) + channels, dtype=torch.float64,
                           device=self.dist.device)
        n_steps = 0
        t = self.params.train
        per_epoch = self.steps_per_epoch()
        for step, (x, pixels) in enumerate(self.batches(epoch)):
            if t.lr_schedule == "cosine":
                lr = t.learning_rate * cosine_lr_factor(
                    epoch * per_epoch + step, t.epochs * per_epoch, t.lr_warmup_epochs * per_epoch)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
            try:
                sums += self.step(x, pixels, beta)
            except TrainingDiverged as err:
                raise TrainingDiverged(
                    f"{err} at epoch {epoch + 1}, step {step + 1}; lower train.learning_rate or "
                    "check data/gaussians.h5 for NaN/inf") from None
            n_steps += 1
        means = sums / (n_steps * self.dist.world)
        per_type = type_losses(means[len(STEP_STATS):], types)
        return {**{k: float(means[i]) for i, k in enumerate(STEP_STATS)},
                **{k: float(v) for k, v in per_type.items()}}

    def steps_per_epoch(self) -> int:
        """Optimizer steps each process takes per epoch (epoch_order's share, in batches)."""
        n, world = self.job.train_set.examples, self.dist.world
        return math.ceil((n - n % world) // world / self.params.train.batch_size)

    def validate(self) -> dict:
        return split_scores(self.model, self.job.x_val, self.params.train.loss_weighting,
                            self.job.objective.types)

    def config_hash(self) -> str:
        """What a checkpoint must match to be resumed: the model, params, data, and the launch
        (the number of processes sets the effective batch; the device type, mixed precision)."""
        p, job = self.params, self.job
        return config_hash({"train": p.train.model_dump(), "latent_dim": p.latent_dim,
                            "max_beta": p.max_beta, "model": job.config.to_dict(),
                            "stats": job.saved_stats, "n_train": job.train_set.examples,
                            "world": self.dist.world, "device": self.dist.device.type})

    def resume(self, path: Path, expected_hash: str) -> RunState:
        """The state of an unfinished run of the same config, data and launch (loaded into the
        trainer), or a fresh one. Rank 0 reads the file and sends it to the others: machines
        need not share a filesystem."""
        ckpt = load_checkpoint(path, expected_hash) if self.dist.is_main else None
        ckpt = self.dist.broadcast(ckpt)
        if ckpt is None:
            return RunState()
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        log.info("resuming from %s at epoch %d", path, ckpt["epoch"])
        return RunState(ckpt["epoch"], ckpt["best"], ckpt["bad_epochs"], ckpt["history"],
                        ckpt["best_state"])

    def checkpoint(self, path: Path, state: RunState, expected_hash: str,
                   finished: bool) -> None:
        save_checkpoint(path, {
            "config_hash": expected_hash, "finished": finished, "epoch": state.epoch,
            "best": state.best, "bad_epochs": state.bad_epochs, "history": state.history,
            "best_state": state.best_state, "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict()})

    def fit(self, paths: TrainPaths,
            on_epoch: Callable[[int, dict], None] | None = None) -> dict:
        """Train (or resume) to the end of the budget or an early stop; writes model,
        checkpoint, logs, history and metrics; returns the metrics ({} on ranks other than 0)."""
        t, dist, types = self.params.train, self.dist, self.job.objective.types
        expected_hash = self.config_hash()
        state = self.resume(paths.checkpoint, expected_hash)
        if state.epoch == 0 and dist.is_main and paths.log_dir.exists():
            shutil.rmtree(paths.log_dir)  # a fresh run must not mix with an old run's events
        writer = SummaryWriter(str(paths.log_dir), purge_step=state.epoch) \
            if dist.is_main else None
        if dist.is_main:
            log.info("model %s: %d parameters", type(self.model).__name__,
                     count_parameters(self.model))
        stop = False
        for epoch in range(state.epoch, t.epochs):
            # --- schedule and steps
            beta = beta_at(epoch, self.params.max_beta, t.beta_warmup_epochs)
            train_losses = self.run_epoch(epoch, beta)
            # --- validate and decide, on rank 0: learning-rate cut, kept model, early stop
            if dist.is_main:
                row = history_row(epoch, beta, self.lr, train_losses, self.validate(), types)
                state.history.append(row)
                if beta == self.params.max_beta:  # selection at the run's beta only
                    if t.lr_schedule == "plateau":
                        self.scheduler.step(row["val_recon"])
                    stop = state.plateau(row["val_recon"], self.model, t.early_stopping_patience)
            # --- every rank follows rank 0
            lr, stop = dist.broadcast((self.lr, stop))
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            state.epoch = epoch + 1
            # --- log and checkpoint, on rank 0
            if dist.is_main:
                log_epoch(writer, self.model, self.job.x_val, row)
                if on_epoch is not None:
                    on_epoch(epoch + 1, row)
                self.checkpoint(paths.checkpoint, state, expected_hash,
                                stop or epoch + 1 == t.epochs)
            if stop:
                if dist.is_main:
                    log.info("early stop at epoch %d: no better val recon for %d epochs",
                             epoch + 1, state.bad_epochs)
                break
        if writer is not None:
            writer.close()
        if not dist.is_main:
            return {}
        return self._export(paths, state, stop)

    def _export(self, paths: TrainPaths, state: RunState, stopped_early: bool) -> dict:
        """Write the kept model, the history TSV and metrics/train.json; return the metrics."""
        params, job, model = self.params, self.job, self.model
        at_full_beta = [r for r in state.history if r["beta"] == params.max_beta]
        if state.best_state is None:  # the budget ended inside the warm-up
            log.warning("train.epochs (%d) ends before the beta warm-up completes (%d epochs): "
                        "the kept model is the last epoch's, trained at beta %g, not max_beta "
                        "%g", params.train.epochs, params.train.beta_warmup_epochs,
                        state.history[-1]["beta"], params.max_beta)
            state.best_state = _cpu_copy(model)
        model.load_state_dict(state.best_state)
        save_model_file(paths.model, job.kind, job.config.to_dict(), state.best_state,
                        job.saved_stats, params.model_dump())
        write_history(paths.history, state.history)
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


def make_trainer(params: Params, job: TrainingJob, dist: Dist) -> Trainer:
    """The one way a run's parts are built: the job's model seeded with train.seed on this
    process's device (under DDP when torchrun started a group), AdamW, the plateau schedule and
    the gradient scaler (enabled on CUDA)."""
    t, device = params.train, dist.device
    torch.manual_seed(t.seed)
    model = job.build().to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=t.learning_rate,
                                  weight_decay=t.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=t.lr_factor, patience=t.lr_patience)
    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    net: torch.nn.Module = model
    if dist.grouped:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    return Trainer(params, job, dist, model, net, optimizer, scheduler, scaler, amp)


def train_gaussian_vae(params: Params, data: GaussianSet, stats: NormStats, paths: TrainPaths,
                       dist: Dist, orders: np.ndarray | None = None,
                       images: ImageSet | None = None,
                       on_epoch: Callable[[int, dict], None] | None = None) -> dict:
    """The train stage in one call: the Gaussian VAE's job, its trainer, the loop; returns the
    metrics ({} on ranks other than 0). ``dist``: this process's place (Dist() alone)."""
    job = gaussian_job(params, data, stats, orders, images, dist.device)
    return make_trainer(params, job, dist).fit(paths, on_epoch)


def _cpu_copy(model: torch.nn.Module) -> dict:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _flat_scores(scores: dict) -> dict:
    """Training's view of split scores: recon, kl, per-type losses, active units."""
    losses = {k: v for k, v in scores["loss"].items() if k != "total"}
    return {"recon": scores["loss"]["total"], "kl": scores["kl_nats"], **losses,
            "active_units": scores["active_units"]}
