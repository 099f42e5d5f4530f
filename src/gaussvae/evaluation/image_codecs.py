"""Standard codecs as anchors: what WebP and JPEG (Pillow) give within the latent's byte budget.

Honest budgets: per image, the highest quality whose file fits in the budget; an image whose
smallest file (lowest quality) is over the budget cannot be coded within it, and a codec that
cannot code every image is reported as unreachable (with its smallest sizes), never averaged as
if it met the budget.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from gaussvae.core.store import SPLITS, ImageSet
from gaussvae.evaluation.image_metrics import image_scores, psnr_uint8
from gaussvae.evaluation.per_image import PsnrTable, split_sources

QUALITIES = {"WEBP": (0, 100), "JPEG": (1, 95)}  # Pillow's useful ranges
# Sizes grow with quality almost monotonically; after the binary search a few qualities above
# the boundary are tried too, so an occasional smaller file at a higher quality is not missed.
LOOK_AHEAD = 4


def encode_size_and_decode(image: np.ndarray, fmt: str, quality: int) -> tuple[int, np.ndarray]:
    """Bytes of ``image`` (S, S, 3) uint8 encoded as ``fmt`` at ``quality``, and the decode."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt, quality=quality)
    size = buf.tell()
    buf.seek(0)
    with Image.open(buf) as img:
        decoded = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return size, decoded


@dataclass(frozen=True)
class Coded:
    quality: int | None  # None: even the lowest quality is over the budget
    size: int  # bytes of the chosen file, or of the smallest one when over budget
    decoded: np.ndarray | None


def within_budget(image: np.ndarray, fmt: str, budget: int) -> Coded:
    """The highest quality of ``fmt`` whose file of ``image`` has at most ``budget`` bytes."""
    lo, hi = QUALITIES[fmt]
    size, decoded = encode_size_and_decode(image, fmt, lo)
    if size > budget:
        return Coded(None, size, None)
    best = Coded(lo, size, decoded)
    left, right = lo + 1, hi  # invariant: best fits; search the largest fitting quality above
    while left <= right:
        mid = (left + right) // 2
        size, decoded = encode_size_and_decode(image, fmt, mid)
        if size <= budget:
            best, left = Coded(mid, size, decoded), mid + 1
        else:
            right = mid - 1
    for q in range(best.quality + 1, min(best.quality + LOOK_AHEAD, hi) + 1):
        size, decoded = encode_size_and_decode(image, fmt, q)
        if size <= budget:
            best = Coded(q, size, decoded)
    return best


def code_images(images: np.ndarray, budget: int) -> dict[str, list[Coded]]:
    """Every image (n, S, S, 3) uint8 coded by each format within ``budget`` bytes."""
    return {fmt: [within_budget(img, fmt, budget) for img in images] for fmt in QUALITIES}


def coded_psnr(coded: list[Coded], images: np.ndarray) -> np.ndarray:
    """Per-image PSNR (dB) of ``coded`` against ``images``; NaN where out of budget."""
    return np.array([math.nan if c.decoded is None else psnr_uint8(c.decoded, img)
                     for c, img in zip(coded, images, strict=True)])


def codec_metrics(images: np.ndarray, budget: int,
                  coded_by: dict[str, list[Coded]] | None = None) -> dict:
    """WebP and JPEG within ``budget`` bytes on images (n, S, S, 3) uint8 (coded here, or
    given as ``code_images``'s ``coded_by``): mean PSNR, SSIM, bytes and quality when every
    image fits; otherwise how many do not, and their smallest files' mean size."""
    out: dict = {"budget_bytes": budget}
    coded_by = coded_by or code_images(images, budget)
    for fmt in QUALITIES:
        coded = coded_by[fmt]
        missed = [c.size for c in coded if c.quality is None]
        if missed:
            out[fmt.lower()] = {"unreachable_images": len(missed),
                                "smallest_bytes": float(np.mean(missed))}
            continue
        decoded = np.stack([c.decoded for c in coded])
        out[fmt.lower()] = {**image_scores(decoded, images),
                            "bytes": float(np.mean([c.size for c in coded])),
                            "quality": float(np.mean([c.quality for c in coded]))}
    return out


def codec_study(images: ImageSet, budgets: dict[str, int],
                splits: tuple[str, ...] = ("test", "val")) -> tuple[dict, PsnrTable]:
    """metrics/codecs.json (per split and budget name, ``codec_metrics``) and the per-image
    PSNRs (columns ``<format>_<budget name>``), each image coded once per budget."""
    metrics, parts = {}, []
    for split in splits:
        pixels = images.images[images.split == SPLITS.index(split)]
        metrics[split], columns = {}, {}
        for name, budget in budgets.items():
            coded = code_images(pixels, budget)
            metrics[split][name] = codec_metrics(pixels, budget, coded)
            columns.update({f"{fmt.lower()}_{name}": coded_psnr(c, pixels)
                            for fmt, c in coded.items()})
        sources = split_sources(images, split)
        parts.append(PsnrTable(sources, [split] * len(sources), columns))
    return metrics, PsnrTable.concat(parts)
