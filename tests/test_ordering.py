import numpy as np
import pytest

from gaussvae.gaussians.slots import (
    ORDERINGS,
    grid_cells,
    grid_order,
    grid_slots,
    is_symmetric,
    morton_order,
    order_gaussians,
)


def test_grid_slots_cover_the_unit_square_evenly():
    slots = grid_slots(512)
    assert slots.shape == (512, 2)
    assert (slots > 0).all() and (slots < 1).all()
    assert len(np.unique(slots, axis=0)) == 512
    # A 23 x 23 lattice less 17 cells: 23 rows and 23 columns of cells of one size.
    assert len(np.unique(slots[:, 1])) == 23 and len(np.unique(slots[:, 0])) == 23
    assert np.allclose(np.unique(slots[:, 0]), (np.arange(23) + 0.5) / 23)


@pytest.mark.parametrize("n", [4, 5, 9, 13, 64, 100, 256, 512, 1024])
def test_slots_are_a_set_the_eight_symmetries_map_onto_itself(n):
    row, col, rows, cols = grid_cells(n)
    cells = set(zip(row.tolist(), col.tolist(), strict=True))
    assert len(cells) == n and rows == cols
    side = rows
    for r, c in cells:
        for image in [(c, r), (r, side - 1 - c), (side - 1 - r, c), (side - 1 - c, side - 1 - r)]:
            assert image in cells
    assert is_symmetric(n)


def test_the_512_slot_lattice_has_its_holes_spread_out():
    row, col, side, _ = grid_cells(512)
    taken = np.zeros((side, side), bool)
    taken[row, col] = True
    holes = np.argwhere(~taken)
    assert side == 23 and len(holes) == 17 and not taken[11, 11]  # the centre is a hole
    gaps = np.linalg.norm(holes[:, None] - holes[None], axis=-1)
    assert gaps[gaps > 0].min() >= 4  # no two holes within 4 cells of each other
    assert ((holes >= 3) & (holes <= 19)).all()  # none on the lattice's outer three rings


def test_counts_no_symmetric_set_can_hold_still_get_a_lattice():
    for n in (6, 30, 50):  # n mod 4 = 2 or 3: orbits of 1, 4 and 8 cells cannot sum to n
        row, col, _, _ = grid_cells(n)
        assert len(set(zip(row.tolist(), col.tolist(), strict=True))) == n
        assert not is_symmetric(n)


def test_anchored_ordering_keeps_the_fit_order():
    xy = np.random.default_rng(0).random((64, 2)).astype(np.float32)
    assert np.array_equal(ORDERINGS["anchored"](xy, grid_slots(64)), np.arange(64))


def test_grid_order_of_slots_is_identity():
    slots = grid_slots(64)
    assert (grid_order(slots, slots) == np.arange(64)).all()


def test_grid_order_recovers_a_shuffle():
    slots = grid_slots(100)
    perm = np.random.default_rng(0).permutation(100)
    shuffled = slots[perm] + 0.001
    assert np.allclose(shuffled[grid_order(shuffled, slots)], slots + 0.001)


def test_tiny_shift_does_not_reorder_grid_but_does_reorder_morton():
    slots = grid_slots(100)  # 10 x 10: slot centres at 0.05, 0.15, 0.25, ...
    rng = np.random.default_rng(1)
    g = np.zeros((100, 8), dtype=np.float32)
    g[:, :2] = slots + rng.normal(0, 0.005, size=slots.shape)
    g[:, 5] = np.arange(100)  # identity tag in a colour channel
    # A Gaussian just left of x = 0.25 (a Z-order boundary) moves 0.002 of the image to the right.
    i = int(np.argmin(np.abs(slots[:, 0] - 0.25) + np.abs(slots[:, 1] - 0.45)))
    g[i, 0] = 0.249
    moved = g.copy()
    moved[i, 0] = 0.251
    assert not np.array_equal(order_gaussians(moved, "morton", slots)[:, 5],
                              order_gaussians(g, "morton", slots)[:, 5])
    assert np.array_equal(order_gaussians(moved, "grid", slots)[:, 5],
                          order_gaussians(g, "grid", slots)[:, 5])


def test_morton_order_sorts_by_z_code():
    xy = np.array([[0.9, 0.9], [0.1, 0.1], [0.9, 0.1], [0.1, 0.9]], dtype=np.float32)
    # Z-order: (low x, low y), (high x, low y), (low x, high y), (high x, high y).
    assert list(morton_order(xy)) == [1, 2, 3, 0]

