"""Scores of uint8 images against references: mean PSNR (dB) and SSIM over a set."""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity


def psnr_uint8(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2) / 255.0**2
    return float(-10.0 * np.log10(max(mse, 1e-12)))


def per_image_psnr(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """PSNR (dB) of each image (n, S, S, 3) uint8 against its reference, (n,) float64."""
    return np.array([psnr_uint8(p, r) for p, r in zip(pred, ref, strict=True)], np.float64)


def mean_psnr(pred: np.ndarray, ref: np.ndarray) -> float:
    """Mean PSNR (dB) over images (n, S, S, 3) uint8."""
    return float(np.mean(per_image_psnr(pred, ref)))


def image_scores(pred: np.ndarray, ref: np.ndarray, suffix: str = "") -> dict[str, float]:
    """Mean PSNR (dB) and SSIM over images (n, S, S, 3) uint8, keyed psnr<suffix>,
    ssim<suffix>."""
    ssims = [structural_similarity(p, r, channel_axis=-1, data_range=255)
             for p, r in zip(pred, ref, strict=True)]
    return {f"psnr{suffix}": mean_psnr(pred, ref), f"ssim{suffix}": float(np.mean(ssims))}
