import numpy as np
import pytest
import torch

from gaussvae.gaussians.dense_render import render_dense
from gaussvae.gaussians.extraction import extract
from gaussvae.gaussians.render import render
from gaussvae.gaussians.slots import grid_slots
from gaussvae.vae.symmetry import (
    COUNT,
    MATRICES,
    symmetry_orders,
    transform_gaussians,
    transform_images,
)
from tests.conftest import make_params


@pytest.fixture(scope="module")
def fits(tiny_images):
    return extract(tiny_images, make_params(**{"extract.steps": 4}).extract, torch.device("cpu"))


def test_the_eight_symmetries_are_distinct_and_orthogonal():
    for a in MATRICES:
        assert np.array_equal(a @ a.T, np.eye(2))
    assert len({a.tobytes() for a in MATRICES}) == COUNT == 8


@pytest.mark.parametrize("k", range(8))
def test_transformed_gaussians_draw_the_transformed_image(fits, k):
    g = fits.gaussians[:3]
    size = fits.attrs["image_size"]
    image = render_dense(torch.from_numpy(g).double(), size).numpy()
    moved = render_dense(torch.from_numpy(transform_gaussians(g, k)).double(), size).numpy()
    assert np.allclose(moved, transform_images(image, k), atol=1e-6)
    # also with our windowed renderer, whose windows sit on the pixel grid the symmetries keep
    windowed = render(torch.from_numpy(transform_gaussians(g, k)), size, 9).numpy()
    assert np.allclose(windowed, transform_images(render(torch.from_numpy(g), size, 9).numpy(),
                                                  k), atol=1e-4)
    t = transform_gaussians(g, k)
    assert (t[..., 4] >= 0).all() and (t[..., 4] < np.pi).all()
    assert np.array_equal(t[..., 2:4], g[..., 2:4]) and np.array_equal(t[..., 5:], g[..., 5:])


def test_symmetry_orders_put_each_transformed_gaussian_near_its_slot(fits):
    g = fits.gaussians[:2]
    slots = grid_slots(g.shape[1])
    orders = symmetry_orders(g, "grid", slots)
    assert orders.shape == (2, 8, g.shape[1])
    assert np.array_equal(orders[:, 0], np.broadcast_to(np.arange(g.shape[1]), (2, g.shape[1])))
    for k in range(1, 8):
        t = transform_gaussians(g[0], k)
        assert sorted(orders[0, k]) == list(range(g.shape[1]))  # a permutation
        ordered = np.linalg.norm(t[orders[0, k], :2] - slots, axis=1).mean()
        unordered = np.linalg.norm(t[:, :2] - slots, axis=1).mean()
        assert ordered < 0.5 * unordered


def test_symmetry_orders_do_not_depend_on_the_thread_count(fits):
    g = fits.gaussians[:5]
    slots = grid_slots(g.shape[1])
    assert np.array_equal(symmetry_orders(g, "grid", slots, 4, workers=1),
                          symmetry_orders(g, "grid", slots, 4, workers=3))


def test_numpy_and_torch_transforms_agree(fits):
    g = fits.gaussians[:2]
    for k in range(8):
        a, b = transform_gaussians(torch.from_numpy(g), k).numpy(), transform_gaussians(g, k)
        others = [0, 1, 2, 3, 5, 6, 7]
        assert np.allclose(a[..., others], b[..., others], atol=1e-6)
        turn = np.remainder(a[..., 4] - b[..., 4] + np.pi / 2, np.pi) - np.pi / 2  # rot ~ rot+pi
        assert np.abs(turn).max() < 1e-5
