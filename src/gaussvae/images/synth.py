"""Embedded default dataset: procedurally generated abstract art, deterministic from a seed.

Each image is a low-poly painting (a random Delaunay triangulation filled with palette colours
along a gentle gradient), overlaid with a few discs and stripes. Image ``i`` depends only on
``(seed, i)``, so any subset (a shard, a test) can be regenerated on its own.
``generate_painting`` can also return what the generator knows of each pixel (which kind of
shape covers it, whether a boundary between shapes crosses it): labels a network can be
trained to read off the pixels (evaluation/feature_net.py), with nothing to download.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from scipy.spatial import Delaunay

# Drawn at this multiple of the target size, then box-filtered down: anti-aliased edges are what
# a photographed painting has, and what Gaussians can fit.
_SUPERSAMPLE = 4


@dataclass(frozen=True)
class Painting:
    """One generated image and, when asked for, its labels."""

    image: np.ndarray  # (size, size, 3) uint8
    # With labels=True: per pixel, what covers its centre (REGION_KINDS) and whether a boundary
    # between two shapes crosses it, (size, size) uint8 each; None otherwise.
    regions: np.ndarray | None = None
    edges: np.ndarray | None = None


REGION_KINDS = ("triangle", "disc", "stripe")
_DISC_ID, _STRIPE_ID = 200, 250  # shape ids on the label canvas: triangles count up from 1


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
    return generate_painting(seed, index, size).image


class _Canvas:
    """The painting's canvas and, when labels are wanted, a second one of shape ids drawn with
    the same shapes in the same order (no random draws, so the painting is the same)."""

    def __init__(self, big: int, labels: bool) -> None:
        self.image = Image.new("RGB", (big, big))
        self.draw = ImageDraw.Draw(self.image)
        self.ids = Image.new("L", (big, big)) if labels else None
        self.draw_ids = ImageDraw.Draw(self.ids) if self.ids is not None else None

    def polygon(self, corners: list, fill: tuple[int, int, int], shape_id: int) -> None:
        self.draw.polygon(corners, fill=fill)
        if self.draw_ids is not None:
            self.draw_ids.polygon(corners, fill=shape_id)

    def ellipse(self, box: list, fill: tuple[int, int, int], shape_id: int) -> None:
        self.draw.ellipse(box, fill=fill)
        if self.draw_ids is not None:
            self.draw_ids.ellipse(box, fill=shape_id)

    def labels(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """(regions, edges) at ``size``: the kind of shape at each pixel's centre, and 1 where
        the ids change inside the pixel."""
        ids = np.asarray(self.ids)
        f = ids.shape[0] // size
        kind = np.where(ids >= _STRIPE_ID, 2, np.where(ids >= _DISC_ID, 1, 0)).astype(np.uint8)
        change = np.zeros(ids.shape, dtype=bool)
        change[:, 1:] |= ids[:, 1:] != ids[:, :-1]
        change[1:, :] |= ids[1:, :] != ids[:-1, :]
        edges = change.reshape(size, f, size, f).any(axis=(1, 3)).astype(np.uint8)
        return kind[f // 2::f, f // 2::f].copy(), edges


def generate_painting(seed: int, index: int, size: int, labels: bool = False) -> Painting:
    """``generate_image``'s painting and, with ``labels``, its region and edge maps (the same
    image either way)."""
    rng = np.random.default_rng([seed, index])
    big = size * _SUPERSAMPLE
    palette = _palette(rng, int(rng.integers(3, 7)))
    canvas = _Canvas(big, labels)

    # Low-poly layer: jittered points plus the corners, triangulated.
    n_points = int(rng.integers(6, 30))
    pts = np.concatenate(
        [rng.uniform(0, 1, size=(n_points, 2)), [[0, 0], [0, 1], [1, 0], [1, 1]]]
    )
    tri = Delaunay(pts)
    gradient = rng.normal(0, 0.25, size=(2, 3))  # colour drift across the canvas
    for t, simplex in enumerate(tri.simplices):
        corners = pts[simplex]
        centre = corners.mean(axis=0)
        colour = palette[rng.integers(len(palette))] + (centre - 0.5) @ gradient
        colour = colour + rng.normal(0, 0.04, size=3)
        canvas.polygon([tuple(p) for p in corners * big], _to_byte(colour), 1 + t % (_DISC_ID - 1))

    # Discs.
    for d in range(int(rng.integers(0, 4))):
        cx, cy = rng.uniform(0, 1, size=2) * big
        radius = rng.uniform(0.05, 0.25) * big
        colour = palette[rng.integers(len(palette))]
        canvas.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], _to_byte(colour),
                       _DISC_ID + d)

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
            canvas.polygon([tuple(p) for p in quad], _to_byte(colour), _STRIPE_ID + k)

    small = canvas.image.resize((size, size), Image.Resampling.BOX)
    regions, edges = canvas.labels(size) if labels else (None, None)
    return Painting(np.asarray(small, dtype=np.uint8).copy(), regions, edges)
