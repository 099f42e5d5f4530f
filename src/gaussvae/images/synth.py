"""Embedded default dataset: procedurally generated abstract art, deterministic from a seed.

Each image is a low-poly painting (a random Delaunay triangulation filled with palette colours
along a gentle gradient), overlaid with a few discs and stripes. Image ``i`` depends only on
``(seed, i)``, so any subset (a shard, a test) can be regenerated on its own.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw
from scipy.spatial import Delaunay

# Drawn at this multiple of the target size, then box-filtered down: anti-aliased edges are what
# a photographed painting has, and what Gaussians can fit.
_SUPERSAMPLE = 4


def _palette(rng: np.random.Generator, k: int) -> np.ndarray:
    """k colours (k, 3) in [0, 1] around a random hue, as painters' palettes tend to be."""
    base = rng.uniform(0, 1)
    hues = (base + rng.normal(0, 0.18, size=k)) % 1.0
    sats = rng.uniform(0.3, 0.95, size=k)
    vals = rng.uniform(0.25, 1.0, size=k)
    hsv = np.stack([hues, sats, vals], axis=1)
    rgb = Image.fromarray((hsv[None] * 255).astype(np.uint8), "HSV").convert("RGB")
    return np.asarray(rgb, dtype=np.float64)[0] / 255.0


def _to_byte(colour: np.ndarray) -> tuple[int, int, int]:
    c = np.clip(np.round(colour * 255), 0, 255).astype(int)
    return int(c[0]), int(c[1]), int(c[2])


def generate_image(seed: int, index: int, size: int) -> np.ndarray:
    """One abstract painting as (size, size, 3) uint8, a pure function of (seed, index, size)."""
    rng = np.random.default_rng([seed, index])
    big = size * _SUPERSAMPLE
    palette = _palette(rng, int(rng.integers(3, 7)))
    canvas = Image.new("RGB", (big, big))
    draw = ImageDraw.Draw(canvas)

    # Low-poly layer: jittered points plus the corners, triangulated.
    n_points = int(rng.integers(6, 30))
    pts = np.concatenate(
        [rng.uniform(0, 1, size=(n_points, 2)), [[0, 0], [0, 1], [1, 0], [1, 1]]]
    )
    tri = Delaunay(pts)
    gradient = rng.normal(0, 0.25, size=(2, 3))  # colour drift across the canvas
    for simplex in tri.simplices:
        corners = pts[simplex]
        centre = corners.mean(axis=0)
        colour = palette[rng.integers(len(palette))] + (centre - 0.5) @ gradient
        colour = colour + rng.normal(0, 0.04, size=3)
        draw.polygon([tuple(p) for p in corners * big], fill=_to_byte(colour))

    # Discs.
    for _ in range(int(rng.integers(0, 4))):
        cx, cy = rng.uniform(0, 1, size=2) * big
        radius = rng.uniform(0.05, 0.25) * big
        colour = palette[rng.integers(len(palette))]
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=_to_byte(colour))

    # Stripes: parallel bands at a random angle.
    if rng.uniform() < 0.5:
        angle = rng.uniform(0, np.pi)
        width = rng.uniform(0.03, 0.1) * big
        direction = np.array([np.cos(angle), np.sin(angle)])
        normal = np.array([-direction[1], direction[0]])
        offset = rng.uniform(0, 1) * big
        colour = palette[rng.integers(len(palette))]
        for k in range(int(rng.integers(1, 4))):
            centre = np.array([big / 2, big / 2]) + normal * (offset - big / 2 + k * 2.5 * width)
            a = centre - direction * big * 1.5
            b = centre + direction * big * 1.5
            quad = [a - normal * width / 2, b - normal * width / 2,
                    b + normal * width / 2, a + normal * width / 2]
            draw.polygon([tuple(p) for p in quad], fill=_to_byte(colour))

    small = canvas.resize((size, size), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.uint8).copy()
