"""The square's eight symmetries (flips and quarter turns), acting exactly on fitted Gaussians.

Turning or flipping an image turns or flips its Gaussians: centres move by the same map, each
axis turns with it, scales and colours stay. So every fitted training image gives seven more
exact fits of seven more images of the same kind, for free. Only the order must be redone:
with anchored ordering the slot lattice maps onto itself, so each symmetry is one fixed
permutation of slots for every fit (``slot_permutations``); grid ordering needs one linear
assignment per fit and symmetry, Morton one sort. The ``symmetries`` stage stores them.

Each symmetry is an orthogonal 2 x 2 matrix A acting on positions relative to the image centre,
in (x, y) with y pointing down the rows; symmetry 0 is the identity.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from array_api_compat import array_namespace, device

from gaussvae.core.channels import ANGLE, FEAT, SCALE, XY, wrap_rotation
from gaussvae.gaussians.slots import order_of

MATRICES = np.array([
    [[1, 0], [0, 1]],    # identity
    [[0, -1], [1, 0]],   # quarter turn
    [[-1, 0], [0, -1]],  # half turn
    [[0, 1], [-1, 0]],   # three quarter turns
    [[-1, 0], [0, 1]],   # mirror x
    [[1, 0], [0, -1]],   # mirror y
    [[0, 1], [1, 0]],    # transpose
    [[0, -1], [-1, 0]],  # anti-transpose
], dtype=np.float64)
COUNT = len(MATRICES)


def transform_gaussians(g: Any, k: int) -> Any:
    """Gaussians (..., 8) in stored units under symmetry k, canonical (rot in [0, pi)); numpy
    arrays or torch tensors (array API), so training can transform batches on its device."""
    xp = array_namespace(g)
    a = xp.asarray(MATRICES[k].T, dtype=g.dtype, device=device(g))
    xy = (g[..., XY] - 0.5) @ a + 0.5
    axis = xp.stack([xp.cos(g[..., ANGLE]), xp.sin(g[..., ANGLE])], axis=-1) @ a
    rot = wrap_rotation(xp.atan2(axis[..., 1:2], axis[..., 0:1]))  # the axis's (x, y)
    return xp.concat([xy, g[..., SCALE], rot, g[..., FEAT]], axis=-1)


def transform_images(images: np.ndarray, k: int) -> np.ndarray:
    """Images (..., S, S, C) (rows y, columns x) under symmetry k, matching transform_gaussians."""
    size = images.shape[-2]
    centre = (size - 1) / 2
    idx = np.arange(size) - centre
    ys, xs = np.meshgrid(idx, idx, indexing="ij")  # output pixel (y', x')
    a_inv = MATRICES[k].T  # orthogonal: inverse is transpose
    src = np.stack([xs, ys], axis=-1) @ a_inv.T + centre  # source (x, y) of each output pixel
    sx, sy = np.rint(src[..., 0]).astype(int), np.rint(src[..., 1]).astype(int)
    return images[..., sy, sx, :]


def slot_permutations(slots: np.ndarray, count: int = COUNT) -> np.ndarray:
    """(count, N) int16: row k is the permutation p with transform_gaussians(g, k)[p] in slot
    order, the same for every anchored fit g, because symmetry k maps slot p[j] onto slot j.
    ``slots`` (N, 2) must be a set the symmetries map onto itself (slots.is_symmetric)."""
    out = np.empty((count, len(slots)), dtype=np.int16)
    for k in range(count):
        moved = (slots.astype(np.float64) - 0.5) @ MATRICES[k].T + 0.5  # where slot i goes
        dist = ((moved[:, None, :] - slots[None, :, :]) ** 2).sum(-1)  # (slot i, slot j)
        lands = dist.argmin(axis=1)
        if dist[np.arange(len(slots)), lands].max() > 1e-10 or len(set(lands)) != len(slots):
            raise ValueError(f"{len(slots)} slots are not a set symmetry {k} maps onto itself")
        out[k, lands] = np.arange(len(slots))
    return out


def symmetry_orders(gaussians: np.ndarray, ordering: str, slots: np.ndarray,
                    count: int = COUNT, on_image: Callable[[], None] | None = None,
                    workers: int | None = None) -> np.ndarray:
    """Permutations (n, count, N) int16 of each image's Gaussians (n, N, 8) under the first
    ``count`` symmetries: transform_gaussians(g, k)[perm[k]] is symmetry k's fit in
    ``ordering`` (as extraction orders); (1, count, N) for anchored ordering, whose one table
    holds for every fit (``slot_permutations``). scipy's assignment releases the GIL, so
    threads run in parallel, one per core by default: on a GPU machine grid ordering makes this
    stage the pipeline's slowest (one H200 machine: 14 images/s on 2 threads). Each image
    writes its own row, so the result does not depend on ``workers``."""
    n, num = gaussians.shape[:2]
    if ordering == "anchored":
        table = slot_permutations(slots, count)[None]
        if on_image is not None:
            for _ in range(n):
                on_image()
        return table
    out = np.empty((n, count, num), dtype=np.int16)
    out[:, 0] = np.arange(num)

    def one(i: int) -> None:
        for k in range(1, count):
            out[i, k] = order_of(transform_gaussians(gaussians[i], k)[:, :2], ordering, slots)
        if on_image is not None:
            on_image()

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        list(pool.map(one, range(n)))
    return out

