import numpy as np
import torch

from gaussvae.baselines.pixel_job import PixelTrainingSet
from gaussvae.gaussians.slots import grid_slots
from gaussvae.vae.normalization import compute_stats, normalize
from gaussvae.vae.symmetry import symmetry_orders, transform_gaussians, transform_images
from gaussvae.vae.training_set import GaussianTrainingSet


def test_gaussian_batches_are_the_fits_under_their_symmetry(tiny_data):
    _, data, _ = tiny_data
    fits = data.gaussians[data.select("train")][:5]
    stats = compute_stats(fits, 1e-6, per_position=True, encoding_name="ellipse")
    orders = symmetry_orders(fits, "grid", grid_slots(fits.shape[1]), 8)
    targets = torch.rand(5, 32, 32, 3)
    dataset = GaussianTrainingSet(torch.from_numpy(fits), stats,
                                  torch.from_numpy(orders.astype(np.int64)), targets)
    assert (dataset.examples, dataset.symmetries) == (5, 8)
    idx = torch.tensor([0, 8 * 2 + 3, 8 * 4 + 7])  # example 0 as is, 2 turned, 4 anti-transposed
    x, pixels = dataset.batch(idx)
    for row, (example, k) in enumerate([(0, 0), (2, 3), (4, 7)]):
        expected = transform_gaussians(fits[example], k)[orders[example, k]]
        assert torch.allclose(x[row], normalize(torch.from_numpy(expected), stats), atol=1e-5)
        assert np.array_equal(pixels[row].numpy(), transform_images(targets[example].numpy(), k))
    assert torch.equal(dataset.fits, torch.from_numpy(fits))  # batches do not change the set


def test_pixel_batches_are_the_images_under_their_symmetry():
    images = torch.rand(3, 16 * 16, 3)
    dataset = PixelTrainingSet(images, 16, 4)
    x, _ = dataset.batch(torch.tensor([2 * 4 + 1, 0]))
    turned = transform_images(images[2].reshape(16, 16, 3).numpy(), 1).reshape(-1, 3)
    assert np.array_equal(x[0].numpy(), turned) and torch.equal(x[1], images[0])
