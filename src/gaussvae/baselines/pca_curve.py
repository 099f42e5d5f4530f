"""PCA's rate-distortion points: the linear floor over its whole range, not at one budget.

Several numbers of components of one fit of the training images, each code at every storage
the VAEs' codes are scored at (code_storage.py), so the frontier in rate_distortion.py compares
like with like.
"""

from __future__ import annotations

import numpy as np

from gaussvae.baselines.pca import PCACode
from gaussvae.evaluation.code_storage import code_points
from gaussvae.evaluation.rate_distortion import Point

PCA_COMPONENTS = (16, 32, 64, 128, 256, 512)


def pca_points(train: np.ndarray, images: np.ndarray,
               components: tuple[int, ...] = PCA_COMPONENTS) -> list[Point]:
    """PCA of ``train`` (n, S, S, 3) uint8 with each number of ``components`` (those that
    ``train`` has), its codes at every storage, scored on ``images``."""
    components = tuple(k for k in components if k <= min(len(train), train[0].size)) or (1,)
    full = PCACode.fit(train, max(components))
    shape = images.shape[1:]
    points = []
    for k in components:
        code = PCACode(full.mean, full.components[:k])
        stored = code_points(code.encode(train), code.encode(images),
                             lambda z, c=code: c.decode(z, shape), images)
        points += [Point("pca", f"k{k}_{name}", p["bytes"], p["psnr"])
                   for name, p in stored.items()]
    return points
