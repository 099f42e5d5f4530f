"""Standard codecs as anchors: what WebP and JPEG (Pillow) give at the latent's byte budget."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def encode_size_and_decode(image: np.ndarray, fmt: str, quality: int) -> tuple[int, np.ndarray]:
    """Bytes of ``image`` (S, S, 3) uint8 encoded as ``fmt`` at ``quality``, and the decode."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt, quality=quality)
    size = buf.tell()
    buf.seek(0)
    with Image.open(buf) as img:
        decoded = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return size, decoded


def at_budget(image: np.ndarray, fmt: str, budget: int) -> tuple[int, int, np.ndarray]:
    """(quality, bytes, decoded) for the quality in 1..100 whose size is closest to ``budget``.

    Sizes grow with quality (nearly monotonically), so the scan stops at the first quality over
    budget and keeps whichever of it and the one before is closer.
    """
    best: tuple[int, int, np.ndarray] | None = None
    for q in range(1, 101):
        size, decoded = encode_size_and_decode(image, fmt, q)
        if best is None or abs(size - budget) < abs(best[1] - budget):
            best = (q, size, decoded)
        if size > budget:
            break
    assert best is not None
    return best


def psnr_uint8(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2) / 255.0**2
    return float(-10.0 * np.log10(max(mse, 1e-12)))
