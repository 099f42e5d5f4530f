import numpy as np

from gaussvae.gaussians.slots import grid_order, grid_slots, morton_order, order_gaussians


def test_grid_slots_cover_the_unit_square_evenly():
    slots = grid_slots(512)
    assert slots.shape == (512, 2)
    assert (slots > 0).all() and (slots < 1).all()
    assert len(np.unique(slots, axis=0)) == 512
    # 23 rows for 512 slots: row heights equal.
    assert len(np.unique(slots[:, 1])) == 23


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

