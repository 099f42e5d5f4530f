"""Pictures a person would rather look at than read: image grids and a loss bar chart."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw

from gaussvae.core.atomic import atomic_path
from gaussvae.core.channels import TYPES

matplotlib.use("Agg")  # no screen on CI machines
import matplotlib.pyplot as plt  # noqa: E402

_GAP = 4  # pixels of white between tiles
_HEADER = 14  # pixels of column captions


def image_grid(columns: list[np.ndarray], titles: list[str] | None = None,
               scale: int = 3) -> Image.Image:
    """Tile images: columns[j] is (rows, S, S, 3) uint8; optional caption over each column."""
    rows, size = columns[0].shape[0], columns[0].shape[1]
    tile = size * scale
    top = _HEADER if titles else 0
    width = len(columns) * (tile + _GAP) + _GAP
    height = top + rows * (tile + _GAP) + _GAP
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for j, col in enumerate(columns):
        x = _GAP + j * (tile + _GAP)
        if titles:
            draw.text((x, 1), titles[j], fill="black")
        for i in range(rows):
            img = Image.fromarray(col[i]).resize((tile, tile), Image.Resampling.NEAREST)
            canvas.paste(img, (x, top + _GAP + i * (tile + _GAP)))
    return canvas


def square_grid(images: np.ndarray, scale: int = 3) -> Image.Image:
    """Images (n, S, S, 3) uint8 tiled in a near-square grid."""
    n = len(images)
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    padded = np.concatenate([images, np.full((rows * cols - n, *images.shape[1:]), 255,
                                             dtype=np.uint8)])
    return image_grid([padded[j::cols] for j in range(cols)], None, scale)


def save_png(image: Image.Image, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def type_loss_bars(losses: dict[str, dict[str, float]], path: str | Path) -> None:
    """Bar chart of per-type losses per split; the dashed line is 'predicts the mean' (1.0)."""
    types = list(TYPES)
    splits = list(losses)
    width = 0.8 / max(1, len(splits))
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    for k, split in enumerate(splits):
        xs = np.arange(len(types)) + (k - (len(splits) - 1) / 2) * width
        ax.bar(xs, [losses[split][t] for t in types], width, label=split)
    ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label="predict the mean")
    ax.set_xticks(np.arange(len(types)), types)
    ax.set_ylabel("MSE (normalized units)")
    ax.set_title("Per-type reconstruction loss, z = mu")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
