"""What a training run records per epoch: the history TSV (DVC plots) and TensorBoard.

One row per epoch, the same columns in both: the schedule (beta, learning rate), the training
losses (means over every step of every process) and the validation scores (z = mu).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter

from gaussvae.core.atomic import atomic_path
from gaussvae.vae.model import VAE


def history_columns(types: dict[str, slice]) -> tuple[str, ...]:
    """The columns of metrics/train_history.tsv and the TensorBoard scalars."""
    return ("epoch", "beta", "lr", "train_loss", "train_recon", "train_kl", "val_recon",
            "val_kl", *(f"val_{t}" for t in types), "val_active_units",
            *(f"train_{t}" for t in types))


def history_row(epoch: int, beta: float, lr: float, train: dict, val: dict,
                types: dict[str, slice]) -> dict:
    """One epoch's row (``epoch`` 0-based; the row counts from 1)."""
    row = {"epoch": epoch + 1, "beta": beta, "lr": lr, "train_loss": train["loss"],
           "train_recon": train["recon"], "train_kl": train["kl"],
           "val_recon": val["loss"]["total"], "val_kl": val["kl_nats"],
           **{f"val_{t}": val["loss"][t] for t in types},
           "val_active_units": val["active_units"],
           **{f"train_{t}": train[t] for t in types}}
    return {c: row[c] for c in history_columns(types)}


def write_history(path: Path, history: list[dict]) -> None:
    columns = list(history[0])
    lines = ["\t".join(columns)]
    for row in history:
        lines.append("\t".join(
            str(row[c]) if isinstance(row[c], int) else f"{row[c]:.6g}" for c in columns))
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def log_epoch(writer: SummaryWriter, model: VAE, x_val: torch.Tensor, row: dict) -> None:
    """Every history column as a scalar (train/..., val/..., schedule/...) and the latent's
    posterior histograms on the first validation inputs."""
    step = row["epoch"]
    for column in list(row)[1:]:
        split, _, name = column.partition("_")
        writer.add_scalar(f"{split}/{name}" if name else f"schedule/{split}", row[column], step)
    with torch.no_grad():
        post = model.encode(x_val[:512])
    writer.add_histogram("latent/mu", post.mu.float().cpu(), step)
    writer.add_histogram("latent/logvar", post.logvar.float().cpu(), step)
    writer.flush()
