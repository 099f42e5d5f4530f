"""The slot lattice and the three orderings of Gaussians within an image.

A VAE compares Gaussian ``i`` of one image with Gaussian ``i`` of another, so index ``i`` must
mean the same thing everywhere. ``anchored`` gets that by construction: the fit starts Gaussian
``i`` on slot ``i`` and keeps its centre within ``extract.max_offset`` slot spacings of it
(fit.py), so the fit's order is the slot order and nothing is reordered. ``grid`` lets centres
go anywhere and then gives each a slot by linear assignment (a small move never reorders);
``morton`` sorts by the Z-order code of the centre, as the original GaussVAE did (a small move
can reorder).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
from scipy.optimize import linear_sum_assignment


def _orbits(side: int) -> list[list[tuple[int, int]]]:
    """The cells (row, col) of a side x side lattice grouped into orbits of the square's eight
    symmetries (sizes 1, 4 or 8), in row-major order of each orbit's first cell."""
    seen: set[tuple[int, int]] = set()
    out = []
    for r in range(side):
        for c in range(side):
            if (r, c) in seen:
                continue
            a, b = r, side - 1 - r
            orbit = sorted({(y, x) for y in (a, b) for x in (c, side - 1 - c)}
                           | {(x, y) for y in (a, b) for x in (c, side - 1 - c)})
            seen.update(orbit)
            out.append(orbit)
    return out


def _spread(added: frozenset[tuple[int, int]], holes: frozenset[tuple[int, int]],
            side: int) -> float:
    """How spread out ``holes`` stay when the cells ``added`` join them: the least distance
    (in cells) from an added cell to another hole, old or added, or to the lattice's outside."""
    new = np.asarray(sorted(added), dtype=np.float64)
    edge = np.minimum(new + 1, side - new).min()
    others = np.asarray(sorted(holes | added), dtype=np.float64)
    d = np.sqrt(((new[:, None] - others[None]) ** 2).sum(-1))
    return float(min(edge, d[d > 0].min(initial=np.inf)))


def _holes(side: int, count: int, beam: int = 16) -> set[tuple[int, int]]:
    """``count`` cells to leave empty, as whole orbits where the count allows (the centre, then
    orbits of 4 or 8), chosen by a beam search for the most spread-out set (the least distance
    between holes or from a hole to the outside, ``_spread``), so every hole has slots round
    it. A remainder no orbit can take (count mod 4 = 2 or 3 without a centre to spend) is taken
    from the end of the last row; such a lattice is not symmetric (``is_symmetric``)."""
    start: frozenset[tuple[int, int]] = frozenset()
    if side % 2 and count % 4 in (1, 3):
        start = frozenset({(side // 2, side // 2)})
    orbits = [frozenset(o) for o in _orbits(side) if len(o) > 1]
    target = len(start) + (count - len(start)) // 4 * 4
    states: dict[frozenset, float] = {start: math.inf}
    done: dict[frozenset, float] = {}
    while states:
        grown: dict[frozenset, float] = {}
        for holes, spread in states.items():
            if len(holes) == target:
                done[holes] = spread
                continue
            for o in orbits:
                if not holes & o and len(holes) + len(o) <= target and holes | o not in grown:
                    grown[holes | o] = min(spread, _spread(o, holes, side))
        # Best spread first, ties in a fixed order of the cells: the result is deterministic.
        kept = sorted(grown, key=lambda h: (-grown[h], sorted(h)))[:beam]
        states = {h: grown[h] for h in kept}
    best = set(min(done, key=lambda h: (-done[h], sorted(h))) if done else start)
    cells = [(r, c) for r in range(side) for c in range(side) if (r, c) not in best]
    best.update(cells[len(cells) - (count - len(best)):] if count > len(best) else [])
    return best


@functools.cache
def _lattice(n: int) -> tuple[np.ndarray, np.ndarray, int]:
    side = math.isqrt(n - 1) + 1
    if n % 4 == 1 and side % 2 == 0:  # an odd count of slots needs the centre cell
        side += 1
    holes = _holes(side, side * side - n)
    cells = [(r, c) for r in range(side) for c in range(side) if (r, c) not in holes]
    row, col = (np.asarray(v) for v in zip(*cells, strict=True))
    return row, col, side


def grid_cells(n: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Row and column (n,) of every slot of ``grid_slots(n)``, and the lattice's rows and
    columns.

    The slots are the cells of the smallest square lattice that holds ``n`` of them, less
    spread-out holes taken in whole orbits of the square's eight symmetries: 512 slots are a
    23 x 23 lattice less its centre and 16 cells. So a flip or a quarter turn of an image maps
    the slot set onto itself and acts on its fits as a permutation of slots (vae/symmetry.py).
    That is possible when n mod 4 is 0 or 1; other counts get a lattice that is not symmetric
    (``is_symmetric``). A 2D model reads slot k at (row[k], col[k]) with the holes empty.
    """
    row, col, side = _lattice(n)
    return row.copy(), col.copy(), side, side


def is_symmetric(n: int) -> bool:
    """Whether the square's eight symmetries map the ``n`` slots onto themselves."""
    row, col, side = _lattice(n)
    cells = set(zip(row.tolist(), col.tolist(), strict=True))
    return all((c, side - 1 - r) in cells and (r, side - 1 - c) in cells for r, c in cells)


def grid_slots(n: int) -> np.ndarray:
    """``n`` slot centres (n, 2) (x, y) in [0, 1]^2, row-major: the centres of the cells of
    ``grid_cells(n)``, every cell of side 1 / (lattice side)."""
    row, col, side = _lattice(n)
    return np.stack([(col + 0.5) / side, (row + 0.5) / side], axis=1).astype(np.float32)


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
    "anchored": lambda xy, slots: np.arange(len(xy)),
    "grid": grid_order,
    "morton": lambda xy, slots: morton_order(xy)}


def order_of(xy: np.ndarray, ordering: str, slots: np.ndarray) -> np.ndarray:
    """The permutation of centres (n, 2) that ``ordering`` (params.Ordering) puts them in."""
    return ORDERINGS[ordering](xy, slots)


def order_gaussians(gaussians: np.ndarray, ordering: str, slots: np.ndarray) -> np.ndarray:
    """Reorder one image's Gaussians (n, 8) by ``ordering`` ('grid' or 'morton')."""
    return gaussians[order_of(gaussians[:, :2], ordering, slots)]
