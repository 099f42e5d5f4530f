"""Rate-distortion: what each code costs in bytes and renders in dB, over its whole range.

One operating point (512 bytes) cannot show who wins where. Each family is a set of points
(mean bytes per image, mean render PSNR over the images): a VAE's code at ``RD_BITS`` bits per
dimension and in float16 (code_storage.py), for each latent size trained; PCA of the training
images with several numbers of components at the same bit depths (baselines/pca_curve.py); WebP
and JPEG over their whole quality ranges at their real mean file sizes. A family's frontier is
the upper envelope of its points (the best PSNR it reaches at each size), and the summary
number is BD-PSNR (Bjontegaard's delta): the mean vertical gap between two frontiers over the
log-bytes range both cover. Each frontier is interpolated piecewise-linearly in log bytes: the
classic cubic fit overshoots on a handful of unevenly spaced points.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gaussvae.core.atomic import atomic_path
from gaussvae.core.errors import StaleFileError
from gaussvae.evaluation.image_codecs import QUALITIES, encode_size_and_decode
from gaussvae.evaluation.image_metrics import psnr_uint8

CODEC_QUALITY_STEP = 5  # qualities lo, lo + 5, ... and hi of each format (image_codecs.py)
INTERPOLATION_POINTS = 1001
TABLE_FIELDS = ("split", "family", "setting", "bytes", "psnr")


@dataclass(frozen=True)
class Point:
    """One operating point of a family: ``setting`` names it (``latent256_4bit``, ``q30``)."""

    family: str
    setting: str
    bytes: float
    psnr: float


def codec_qualities(fmt: str, step: int = CODEC_QUALITY_STEP) -> list[int]:
    lo, hi = QUALITIES[fmt]
    return sorted({*range(lo, hi + 1, step), hi})


def codec_points(images: np.ndarray, fmt: str, qualities: list[int] | None = None
                 ) -> list[Point]:
    """``fmt`` (WEBP, JPEG) at each quality: mean real file size and mean PSNR over images."""
    points = []
    for q in qualities or codec_qualities(fmt):
        coded = [encode_size_and_decode(img, fmt, q) for img in images]
        points.append(Point(fmt.lower(), f"q{q}", float(np.mean([s for s, _ in coded])),
                            float(np.mean([psnr_uint8(d, img)
                                           for (_, d), img in zip(coded, images, strict=True)]))))
    return points


def vae_points(eval_metrics: dict, split: str, latent_dim: int) -> list[Point]:
    """The VAE's points from its eval.json (``<split>.rate_distortion``)."""
    return [Point("vae", f"latent{latent_dim}_{name}", p["bytes"], p["psnr"])
            for name, p in eval_metrics[split]["rate_distortion"].items()]


def frontier(points: list[Point]) -> list[Point]:
    """The upper envelope: points sorted by bytes, each better than every cheaper one."""
    best: list[Point] = []
    for p in sorted(points, key=lambda p: (p.bytes, -p.psnr)):
        if not best or p.psnr > best[-1].psnr:
            if best and best[-1].bytes == p.bytes:
                best.pop()
            best.append(p)
    return best


def bd_psnr(a: list[Point], b: list[Point]) -> dict[str, float] | None:
    """Mean PSNR of frontier(a) minus frontier(b) over the bytes both cover (uniform in log
    bytes, piecewise-linear between points), and that range; None when they do not overlap."""
    fa, fb = frontier(a), frontier(b)
    if len(fa) < 2 or len(fb) < 2:
        return None
    xa, xb = np.log([p.bytes for p in fa]), np.log([p.bytes for p in fb])
    lo, hi = max(xa[0], xb[0]), min(xa[-1], xb[-1])
    if hi <= lo:
        return None
    grid = np.linspace(lo, hi, INTERPOLATION_POINTS)
    gap = np.interp(grid, xa, [p.psnr for p in fa]) - np.interp(grid, xb, [p.psnr for p in fb])
    return {"db": float(gap.mean()), "from_bytes": float(np.exp(lo)),
            "to_bytes": float(np.exp(hi))}


def write_table(path: str | Path, rows: dict[str, list[Point]]) -> None:
    """Every point of every split as a TSV (split, family, setting, bytes, psnr)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        out = csv.writer(f, delimiter="\t", lineterminator="\n")
        out.writerow(TABLE_FIELDS)
        for split, points in rows.items():
            out.writerows([split, p.family, p.setting, f"{p.bytes:.2f}", f"{p.psnr:.5f}"]
                          for p in points)


def read_table(path: str | Path) -> dict[str, list[Point]]:
    """``write_table``'s file, per split."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f, delimiter="\t")
        if tuple(reader.fieldnames or ()) != TABLE_FIELDS:
            raise StaleFileError(f"{path}: expected columns {', '.join(TABLE_FIELDS)}; "
                                 "rerun `dvc repro baselines/dvc.yaml:rate_distortion`")
        rows: dict[str, list[Point]] = {}
        for r in reader:
            rows.setdefault(r["split"], []).append(
                Point(r["family"], r["setting"], float(r["bytes"]), float(r["psnr"])))
    return rows


def families(points: list[Point]) -> dict[str, list[Point]]:
    """Points grouped into curves: a VAE per latent size, PCA per number of components, each
    codec alone."""
    out: dict[str, list[Point]] = {}
    for p in points:
        key = p.family if p.family in ("webp", "jpeg") else f"{p.family} {p.setting.split('_')[0]}"
        out.setdefault(key, []).append(p)
    return out
