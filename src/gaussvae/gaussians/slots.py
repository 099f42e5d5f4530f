"""Slot grids and the two orderings of Gaussians within an image.

A Conv1D VAE compares Gaussian ``i`` of one image with Gaussian ``i`` of another, so index ``i``
must mean the same thing everywhere. ``grid`` gives each Gaussian a fixed slot of a near-square
grid (linear assignment of centres to slots: a small move never reorders); ``morton`` sorts by
Z-order code of the centre, as the original work did (a small move can reorder).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.optimize import linear_sum_assignment


def grid_cells(n: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Row and column (n,) of every slot of ``grid_slots(n)``, and the grid's rows and columns.

    ``round(sqrt(n))`` rows; the first ``n mod rows`` rows get one slot more, so 512 slots make
    23 rows of 22 or 23 (the longest row sets the column count). A 2D model reads slot k at
    (row[k], col[k]).
    """
    rows = max(1, round(math.sqrt(n)))
    base, extra = divmod(n, rows)
    row, col = [], []
    for r in range(rows):
        cols = base + (1 if r < extra else 0)
        row.extend([r] * cols)
        col.extend(range(cols))
    return np.asarray(row), np.asarray(col), rows, base + (1 if extra else 0)


def grid_slots(n: int) -> np.ndarray:
    """``n`` slot centres (n, 2) in [0, 1]^2, row-major, as evenly spread as ``n`` allows.

    Rows as in ``grid_cells``; each row's slots are centred in equal cells.
    """
    row, col, rows, _ = grid_cells(n)
    per_row = np.bincount(row, minlength=rows)
    x = (col + 0.5) / per_row[row]
    y = (row + 0.5) / rows
    return np.stack([x, y], axis=1).astype(np.float32)


def grid_order(xy: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """Permutation p such that ``xy[p[k]]`` is the centre assigned to slot k.

    Minimizes the total squared distance between centres (n, 2) and slots (n, 2).
    """
    cost = ((xy[:, None, :] - slots[None, :, :]) ** 2).sum(-1)  # (centres, slots)
    rows, cols = linear_sum_assignment(cost)
    perm = np.empty(len(slots), dtype=np.int64)
    perm[cols] = rows
    return perm


def _spread_bits(v: np.ndarray) -> np.ndarray:
    """Insert a zero bit between each of the low 16 bits of v (uint64)."""
    v = v & 0xFFFF
    v = (v | (v << 8)) & 0x00FF00FF
    v = (v | (v << 4)) & 0x0F0F0F0F
    v = (v | (v << 2)) & 0x33333333
    v = (v | (v << 1)) & 0x55555555
    return v


def morton_order(xy: np.ndarray) -> np.ndarray:
    """Permutation sorting centres (n, 2) in [0, 1] by their 16-bit-per-axis Z-order code."""
    q = np.clip(np.floor(xy * 65536.0), 0, 65535).astype(np.uint64)
    code = _spread_bits(q[:, 0]) | (_spread_bits(q[:, 1]) << np.uint64(1))
    return np.argsort(code, kind="stable")


# One function per value of params.Ordering (a test holds the two lists equal).
ORDERINGS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "grid": grid_order, "morton": lambda xy, slots: morton_order(xy)}


def order_of(xy: np.ndarray, ordering: str, slots: np.ndarray) -> np.ndarray:
    """The permutation of centres (n, 2) that ``ordering`` (params.Ordering) puts them in."""
    return ORDERINGS[ordering](xy, slots)


def order_gaussians(gaussians: np.ndarray, ordering: str, slots: np.ndarray) -> np.ndarray:
    """Reorder one image's Gaussians (n, 8) by ``ordering`` ('grid' or 'morton')."""
    return gaussians[order_of(gaussians[:, :2], ordering, slots)]
