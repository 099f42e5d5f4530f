"""Stage 'train': the VAE training loop with beta warm-up, early stopping and exact resume.

Sections of one epoch: schedule (beta), steps, evaluate (validation, z = mu), plateau logic,
log (TensorBoard + TSV), checkpoint. Every epoch starts from ``torch.manual_seed(seed, epoch)``,
so a run resumed from its checkpoint ends with the same weights and metrics as an uninterrupted
one. Early stopping and learning-rate cuts watch the validation RECONSTRUCTION loss: the total
loss rises by design while beta ramps up.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.tensorboard import SummaryWriter

from gaussvae.atomic import atomic_path, write_json
from gaussvae.loss import beta_at, type_losses, vae_loss
from gaussvae.model import VAE, VAEConfig, build_model, count_parameters
from gaussvae.normalize import NormStats, denormalize, normalize
from gaussvae.params import Params, as_dict
from gaussvae.render import RenderSpec, render, to_valid
from gaussvae.store import GaussianSet

log = logging.getLogger(__name__)

HISTORY_COLUMNS = (
    "epoch", "beta", "lr", "train_loss", "train_recon", "train_kl", "val_recon", "val_kl",
    "val_xy", "val_scale", "val_rot", "val_feat", "val_active_units",
    "train_xy", "train_scale", "train_rot", "train_feat",
)
# A latent dimension is "active" when its posterior mean varies across inputs (DESIGN.md 4).
ACTIVE_VARIANCE = 0.01


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the epoch and step."""


@dataclass(frozen=True)
class TrainPaths:
    model: Path  # best weights + config + normalization stats
    checkpoint: Path  # everything needed to resume
    log_dir: Path  # TensorBoard event files
    history: Path  # per-epoch TSV (DVC plots)
    metrics: Path  # metrics/train.json


def model_config(params: Params, num_gaussians: int) -> VAEConfig:
    t = params.train
    return VAEConfig(
        arch=t.arch, num_gaussians=num_gaussians, latent_dim=params.latent_dim,
        encoder_filters=tuple(t.encoder_filters), decoder_filters=tuple(t.decoder_filters),
        kernel_size=t.kernel_size, resnet_blocks=t.resnet_blocks,
        bottleneck_channels=t.bottleneck_channels, logvar_min=t.logvar_min,
        logvar_max=t.logvar_max,
    )


def load_model(path: str | Path, device: torch.device) -> tuple[VAE, NormStats, dict]:
    """Rebuild the trained model from models/model.pt alone (config, weights, stats)."""
    blob = torch.load(path, map_location=device, weights_only=False)
    model = build_model(VAEConfig.from_dict(blob["model_config"])).to(device)
    model.load_state_dict(blob["state_dict"])
    model.eval()
    return model, NormStats.from_json(blob["norm_stats"]), blob


@torch.no_grad()
def reconstruct(model: VAE, x: torch.Tensor, batch: int = 256
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normalized predictions, posterior means and KL (nats/sample) with z = mu."""
    preds, mus, kls = [], [], []
    for i in range(0, len(x), batch):
        pred, post = model(x[i:i + batch], sample=False)
        preds.append(pred.float())
        mus.append(post.mu.float())
        kls.append(post.kl().float())
    return torch.cat(preds), torch.cat(mus), torch.cat(kls)


@torch.no_grad()
def evaluate_split(
    model: VAE, x: torch.Tensor, weighting: str, types: dict[str, slice],
    batch_size: int = 256,
) -> dict[str, float]:
    """Deterministic (z = mu) losses, KL and active units on x (n, N, 8) in model units."""
    model.eval()
    pred, mu, kl = reconstruct(model, x, batch_size)
    _, recon, per_channel = vae_loss(pred, x, kl, 0.0, weighting, types)
    out = {"recon": float(recon), "kl": float(kl.mean())}
    out.update({k: float(v) for k, v in type_losses(per_channel, types).items()})
    var = mu.var(dim=0) if len(mu) > 1 else torch.zeros_like(mu[0])
    out["active_units"] = int((var > ACTIVE_VARIANCE).sum())
    return out


def _config_hash(params: Params, stats: NormStats, n_train: int) -> str:
    blob = json.dumps({"train": as_dict(params.train), "latent_dim": params.latent_dim,
                       "max_beta": params.max_beta, "stats": stats.to_json(),
                       "n_train": n_train}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def save_torch(path: str | Path, obj: Any) -> None:
    """torch.save, atomically and byte-stable.

    torch.save to a path names the archive's top folder after the file, and atomic_path's
    temporary name is random, so the same model gave different bytes (and a new DVC hash) on
    every run; saved through a buffer the folder is always "archive".
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def _dist_info() -> tuple[int, int]:
    """(rank, world size) under torchrun; (0, 1) for a plain single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    rank = torch.distributed.get_rank() if world > 1 else 0
    return rank, world


def train(
    params: Params,
    data: GaussianSet,
    stats: NormStats,
    paths: TrainPaths,
    device: torch.device,
    on_epoch: Callable[[int, dict], None] | None = None,
) -> dict:
    """Train (or resume) the VAE; writes model, checkpoint, logs, history; returns metrics."""
    t = params.train
    rank, world = _dist_info()
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    main = rank == 0

    x_train = normalize(torch.from_numpy(data.gaussians[data.select("train")]), stats).to(device)
    x_val = normalize(torch.from_numpy(data.gaussians[data.select("val")]), stats).to(device)
    num_gaussians = data.gaussians.shape[1]
    cfg = model_config(params, num_gaussians)
    torch.manual_seed(t.seed)
    model = build_model(cfg).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=t.learning_rate)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=t.lr_factor, patience=t.lr_patience
    )
    # Optional render-space term: decoded Gaussians are rendered and compared, in pixels, with
    # the render of the fitted ones (rendered once here, not per step).
    spec = RenderSpec.from_attrs(data.attrs) if t.render_loss_weight > 0 else None
    target_px = None
    if spec is not None:
        fitted = torch.from_numpy(data.gaussians[data.select("train")]).to(device)
        with torch.no_grad():
            target_px = torch.cat([render(fitted[i:i + 256], spec.image_size, spec.window)
                                   for i in range(0, len(fitted), 256)])
    amp = device.type == "cuda"  # mixed precision only where it pays and is tested by users
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    config_hash = _config_hash(params, stats, len(x_train))

    start_epoch, best, bad_epochs, history, best_state = 0, math.inf, 0, [], None
    if paths.checkpoint.exists():
        ckpt = torch.load(paths.checkpoint, map_location=device, weights_only=False)
        if ckpt.get("config_hash") == config_hash and not ckpt.get("finished", False):
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            start_epoch, best, bad_epochs = ckpt["epoch"], ckpt["best"], ckpt["bad_epochs"]
            history, best_state = ckpt["history"], ckpt["best_state"]
            log.info("resuming from %s at epoch %d", paths.checkpoint, start_epoch)
    if start_epoch == 0 and main and paths.log_dir.exists():
        shutil.rmtree(paths.log_dir)  # a fresh run must not mix with an old run's events
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    writer = SummaryWriter(str(paths.log_dir), purge_step=start_epoch) if main else None
    if main:
        log.info("model %s: %d parameters", cfg.arch, count_parameters(model))

    stopped_early = False
    for epoch in range(start_epoch, t.epochs):
        # --- schedule
        beta = beta_at(epoch, params.max_beta, t.beta_warmup_epochs)
        torch.manual_seed(t.seed * 100_003 + epoch)
        perm = torch.randperm(len(x_train))
        # Under DDP every rank must run the same number of steps (all-reduce per step).
        perm = perm[: len(perm) - len(perm) % world][rank::world]
        # --- steps
        net.train()
        sums = {"loss": 0.0, "recon": 0.0, "kl": 0.0}
        channel_sums = torch.zeros(8, device=device)
        n_steps = 0
        for step, start in enumerate(range(0, len(perm), t.batch_size)):
            idx = perm[start:start + t.batch_size].to(device)
            batch = x_train[idx]
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
                pred, post = net(batch)
            kl = post.kl().float()
            total, recon, per_channel = vae_loss(pred.float(), batch, kl, beta,
                                                 t.loss_weighting, stats.types)
            if spec is not None:
                decoded = to_valid(denormalize(pred.float(), stats), spec)
                pixels = render(decoded, spec.image_size, spec.window)
                total = total + t.render_loss_weight * ((pixels - target_px[idx]) ** 2).mean()
            if not torch.isfinite(total):
                raise TrainingDiverged(
                    f"loss became {float(total.detach())} at epoch {epoch + 1}, step {step + 1}; "
                    "lower train.learning_rate or check data/gaussians.h5 for NaN/inf"
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(total).backward()
            scaler.step(optimizer)
            scaler.update()
            sums["loss"] += float(total.detach())
            sums["recon"] += float(recon.detach())
            sums["kl"] += float(kl.detach().mean())
            channel_sums += per_channel.detach()
            n_steps += 1
        train_types = {k: float(v) for k, v in
                       type_losses(channel_sums / n_steps, stats.types).items()}
        # --- evaluate
        val = evaluate_split(model, x_val, t.loss_weighting, stats.types)
        lr = optimizer.param_groups[0]["lr"]
        row = {"epoch": epoch + 1, "beta": beta, "lr": lr,
               "train_loss": sums["loss"] / n_steps, "train_recon": sums["recon"] / n_steps,
               "train_kl": sums["kl"] / n_steps, "val_recon": val["recon"], "val_kl": val["kl"],
               "val_xy": val["xy"], "val_scale": val["scale"], "val_rot": val["rot"],
               "val_feat": val["feat"], "val_active_units": val["active_units"],
               **{f"train_{k}": v for k, v in train_types.items()}}
        history.append(row)
        # --- plateau logic on validation reconstruction
        scheduler.step(val["recon"])
        if val["recon"] < best:
            best, bad_epochs = val["recon"], 0
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1
        stopped_early = bad_epochs >= t.early_stopping_patience
        # --- log
        if writer is not None:
            _log_epoch(writer, model, x_val, row, epoch + 1)
        if on_epoch is not None and main:
            on_epoch(epoch + 1, row)
        # --- checkpoint
        if main:
            save_torch(paths.checkpoint, {
                "config_hash": config_hash, "epoch": epoch + 1, "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "best": best, "bad_epochs": bad_epochs, "history": history,
                "best_state": best_state, "model_config": cfg.to_dict(),
                "params": as_dict(params), "norm_stats": stats.to_json(),
                "finished": stopped_early or epoch + 1 == t.epochs,
            })
        if stopped_early:
            log.info("early stop at epoch %d: no better val recon for %d epochs",
                     epoch + 1, bad_epochs)
            break
    if writer is not None:
        writer.close()
    if world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    if not main:
        return {}

    assert best_state is not None, "training ran no epoch"
    model.load_state_dict(best_state)
    save_torch(paths.model, {"model_config": cfg.to_dict(), "state_dict": best_state,
                             "norm_stats": stats.to_json(), "params": as_dict(params)})
    _write_history(paths.history, history)
    metrics = _train_metrics(history, model, x_train, x_val, t.loss_weighting, stats.types)
    metrics["parameters"] = count_parameters(model)
    metrics["stopped_early"] = int(stopped_early)
    write_json(paths.metrics, metrics)
    return metrics


def _log_epoch(writer: SummaryWriter, model: VAE, x_val: torch.Tensor, row: dict,
               step: int) -> None:
    writer.add_scalar("train/loss", row["train_loss"], step)
    writer.add_scalar("train/recon", row["train_recon"], step)
    writer.add_scalar("train/kl", row["train_kl"], step)
    writer.add_scalar("val/recon", row["val_recon"], step)
    writer.add_scalar("val/kl", row["val_kl"], step)
    for name in ("xy", "scale", "rot", "feat"):
        writer.add_scalar(f"val/loss_{name}", row[f"val_{name}"], step)
        writer.add_scalar(f"train/loss_{name}", row[f"train_{name}"], step)
    writer.add_scalar("schedule/beta", row["beta"], step)
    writer.add_scalar("schedule/lr", row["lr"], step)
    writer.add_scalar("latent/active_units", row["val_active_units"], step)
    with torch.no_grad():
        post = model.encode(x_val[:512])
    writer.add_histogram("latent/mu", post.mu.float().cpu(), step)
    writer.add_histogram("latent/logvar", post.logvar.float().cpu(), step)
    writer.flush()


def _write_history(path: Path, history: list[dict]) -> None:
    lines = ["\t".join(HISTORY_COLUMNS)]
    for row in history:
        lines.append("\t".join(
            str(row[c]) if isinstance(row[c], int) else f"{row[c]:.6g}" for c in HISTORY_COLUMNS
        ))
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def _train_metrics(history: list[dict], model: VAE, x_train: torch.Tensor,
                   x_val: torch.Tensor, weighting: str, types: dict[str, slice]) -> dict:
    """Scalars only (DVC drops lists): final epoch's values and the best model's (per-type
    losses in model units, i.e. of the encoded channels; eval.json reports stored channels)."""
    best_row = min(history, key=lambda r: r["val_recon"])
    last = history[-1]
    best_train = evaluate_split(model, x_train, weighting, types)
    best_val = evaluate_split(model, x_val, weighting, types)

    def rounded(d: dict) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in d.items()}

    return {
        "epochs_run": last["epoch"],
        "best_epoch": best_row["epoch"],
        "final": rounded({"beta": last["beta"], "lr": last["lr"],
                          "train_recon": last["train_recon"], "train_kl": last["train_kl"],
                          "val_recon": last["val_recon"], "val_kl": last["val_kl"]}),
        "best": {"train": rounded(best_train), "val": rounded(best_val)},
    }
