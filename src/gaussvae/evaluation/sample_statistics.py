"""Do images decoded from the prior look like the data? A measured proxy, computed offline.

The default data are flat polygons, discs and stripes in a few palette colours: large flat
areas, sharp edges, few distinct colours, moderate saturation. Blurred or smeared decodes have
the opposite (many intermediate colours, no edges, no flat areas). Four per-image statistics
measure exactly these properties:
  colours    distinct colours (4 bits per channel) that cover 90% of the pixels
  edges      share of pixels whose luminance gradient (Sobel, per pixel) exceeds 0.1
  flat       share of pixels whose luminance gradient is below 0.02
  saturation mean HSV saturation
and the Frechet distance between Gaussians fitted to them (standardized by the reference
images' spread) compares two sets, as FID does with a network's features, but with nothing to
download. ``fd`` of val against test images is the floor two real sets reach.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg, ndimage

FEATURES = ("colours", "edges", "flat", "saturation")
# Images decoded from the prior that the statistics are measured on.
SAMPLES = 300


def image_features(images: np.ndarray) -> np.ndarray:
    """Per-image statistics (n, 4) of images (n, S, S, 3) uint8, in FEATURES order."""
    out = np.empty((len(images), len(FEATURES)))
    for i, img in enumerate(images):
        rgb = img.astype(np.float64) / 255.0
        quant = (img >> 4).astype(np.int64)
        codes = quant[..., 0] * 256 + quant[..., 1] * 16 + quant[..., 2]
        counts = np.sort(np.bincount(codes.ravel()))[::-1]
        colours = int(np.searchsorted(np.cumsum(counts), 0.9 * codes.size) + 1)
        lum = rgb @ np.array([0.299, 0.587, 0.114])
        grad = np.hypot(ndimage.sobel(lum, 0), ndimage.sobel(lum, 1)) / 8.0
        top, bottom = rgb.max(-1), rgb.min(-1)
        saturation = np.where(top > 0, (top - bottom) / np.maximum(top, 1e-12), 0.0)
        out[i] = (colours, (grad > 0.1).mean(), (grad < 0.02).mean(), saturation.mean())
    return out


def frechet_distance(a: np.ndarray, b: np.ndarray, scale: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to feature sets a, b (n, d), both divided by
    ``scale`` (d,) first."""
    a, b = a / scale, b / scale
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b)
    root = root.real if np.iscomplexobj(root) else root
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def sample_statistics(samples: np.ndarray, reference: np.ndarray,
                      other_real: np.ndarray) -> dict:
    """The four statistics' means for samples and reference images, the Frechet distance of
    samples to the reference (``fd``) and of other real images to it (``fd_real``, the floor).
    """
    f_s, f_r, f_o = (image_features(x) for x in (samples, reference, other_real))
    scale = f_r.std(0).clip(1e-6)
    return {"fd": frechet_distance(f_s, f_r, scale),
            "fd_real": frechet_distance(f_o, f_r, scale),
            **{f"{name}": float(f_s[:, j].mean()) for j, name in enumerate(FEATURES)},
            **{f"{name}_real": float(f_r[:, j].mean()) for j, name in enumerate(FEATURES)}}
