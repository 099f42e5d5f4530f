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


def rate_distortion_plot(curves: dict[str, list[tuple[float, float]]], path: str | Path,
                         title: str) -> None:
    """PSNR against bytes per image (log scale) for each named curve of (bytes, dB) points:
    ``vae ...`` curves solid, ``pca ...`` dashed, codecs in black and grey."""
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    vae = plt.get_cmap("viridis")
    vae_names = sorted((n for n in curves if n.startswith("vae")), key=_trailing_number)
    for name, points in sorted(curves.items(), key=lambda kv: (kv[0][:3], _trailing_number(kv[0]))):
        xs, ys = zip(*sorted(points), strict=True)
        if name.startswith("vae"):
            k = vae_names.index(name) / max(1, len(vae_names) - 1)
            ax.plot(xs, ys, "o-", color=vae(0.85 * k), label=name, linewidth=2)
        elif name.startswith("pca"):
            ax.plot(xs, ys, ".--", color="tab:red", alpha=0.35, linewidth=1,
                    label="pca (16 to 512 components)" if name == "pca k16" else None)
        else:
            ax.plot(xs, ys, "s-" if name == "webp" else "^-", markersize=3,
                    color="black" if name == "webp" else "grey", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("bytes per image")
    ax.set_ylabel("render PSNR vs the image (dB)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)


def _trailing_number(name: str) -> int:
    digits = "".join(c for c in name.split()[-1] if c.isdigit())
    return int(digits) if digits else 0
