import numpy as np
import pytest
import torch

from gaussvae.gaussians.dense_render import render_dense
from gaussvae.gaussians.extraction import extract
from gaussvae.gaussians.fit import fit_images
from gaussvae.gaussians.render import render
from gaussvae.gaussians.slots import grid_slots
from gaussvae.images.prepare import prepare_images
from gaussvae.vae.symmetry import (
    COUNT,
    MATRICES,
    slot_permutations,
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


@pytest.fixture(scope="module")
def anchored_fits():
    """Three generated 64 px images, their default anchored fits (512 Gaussians) and the
    default settings: the case the pipeline runs."""
    params = make_params(**{"prepare.image_size": 64, "extract.num_gaussians": 512,
                            "extract.steps": 10})
    images = prepare_images(params.prepare).images[:3]
    slots = torch.from_numpy(grid_slots(512))
    fit = fit_images(torch.from_numpy(images).float() / 255, slots, params.extract)
    return images, fit.gaussians, params.extract


def test_a_symmetry_maps_an_anchored_fit_onto_the_slots_by_one_permutation(anchored_fits):
    _, g, settings = anchored_fits
    slots = grid_slots(512)
    table = slot_permutations(slots)
    reach = settings.offset_bound()
    assert np.array_equal(table[0], np.arange(512))
    for k in range(8):
        assert sorted(table[k]) == list(range(512))
        moved = transform_gaussians(g.numpy(), k)[:, table[k]]
        # every turned Gaussian lies in the box of the slot the table gives it
        assert (np.abs(moved[..., :2] - slots).max(axis=(0, 1)) <= reach + 1e-6).all()
    assert np.array_equal(symmetry_orders(g.numpy(), "anchored", slots), table[None])


@pytest.mark.parametrize("k", range(1, 8))
def test_the_anchored_fit_of_a_turned_image_is_the_turned_fit(anchored_fits, k):
    images, g, settings = anchored_fits
    table = slot_permutations(grid_slots(512))
    turned = fit_images(torch.from_numpy(transform_images(images, k).copy()).float() / 255,
                        torch.from_numpy(grid_slots(512)), settings).gaussians
    moved = transform_gaussians(g, k)[:, torch.from_numpy(table[k].astype(np.int64))]
    # The same image to within float rounding ...
    mse = ((render(moved, 64, 9) - render(turned, 64, 9)) ** 2).mean()
    assert -10 * torch.log10(mse) > 60
    # ... and the same centres and colours in the same slots, but for the few where rounding
    # noise gets amplified by Adam's normalized step (flat regions, where a centre's place does
    # not matter). (Shape is compared by the render: a round Gaussian's angle is arbitrary.)
    keep = [0, 1, 5, 6, 7]
    same = ((moved - turned)[..., keep].abs().amax(-1) < 1e-4).float().mean()
    assert same > 0.95
