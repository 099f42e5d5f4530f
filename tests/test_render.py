import math

import numpy as np
import pytest
import torch

from gaussvae.core.params import load_params
from gaussvae.gaussians.dense_render import render_autograd, render_dense
from gaussvae.gaussians.fit import fit_images
from gaussvae.gaussians.render import psnr, render
from gaussvae.gaussians.slots import grid_slots
from gaussvae.images.synth import generate_image
from tests.conftest import REPO


def _random_gaussians(b: int, n: int, sigma: tuple[float, float], seed: int = 0,
                      dtype=torch.float64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    g = torch.rand(b, n, 8, generator=gen, dtype=dtype)
    lo, hi = sigma
    g[..., 2:4] = lo + (hi - lo) * torch.rand(b, n, 2, generator=gen, dtype=dtype)
    g[..., 4] = g[..., 4] * math.pi
    return g


def test_windowed_equals_dense_when_window_covers_support():
    # sigma <= 0.6 px on a 16 px image: at 4 px (window 9) the weight is < exp(-22).
    g = _random_gaussians(2, 12, (0.2 / 16, 0.6 / 16))
    dense = render_dense(g, 16)
    windowed = render(g, 16, window=9)
    covered = render_dense(g, 16).abs().sum(-1) > 0
    assert covered.any()
    assert torch.allclose(windowed, dense, atol=1e-5)


def test_window_truncation_is_visible_for_wide_gaussians():
    # The converse: a wide Gaussian is cut by a small window, so the test above can fail.
    g = _random_gaussians(1, 4, (4 / 16, 5 / 16))
    assert (render(g, 16, window=3) - render_dense(g, 16)).abs().max() > 1e-3


def test_hand_written_backward_passes_gradcheck():
    g = _random_gaussians(2, 5, (0.06, 0.15)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: render(x, 8, 5), (g,), eps=1e-6, atol=1e-5)


def test_hand_written_backward_matches_autograd():
    g = _random_gaussians(3, 20, (0.03, 0.1), seed=1).requires_grad_(True)
    target = torch.rand(3, 12, 12, 3, dtype=torch.float64)
    a = torch.autograd.grad(((render(g, 12, 7) - target) ** 2).sum(), g)[0]
    b = torch.autograd.grad(((render_autograd(g, 12, 7) - target) ** 2).sum(), g)[0]
    assert torch.allclose(a, b, atol=1e-10)


def test_normalized_blending_gives_the_colour_of_a_lone_gaussian():
    g = torch.tensor([[[0.5, 0.5, 0.1, 0.05, 0.3, 0.2, 0.4, 0.9]]])
    img = render(g, 16, window=5)
    assert torch.allclose(img[0, 8, 8], torch.tensor([0.2, 0.4, 0.9]), atol=1e-6)
    assert img[0, 0, 0].abs().sum() == 0  # outside the window: no colour at all


def test_render_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(B, N, 8\)"):
        render(torch.zeros(4, 8), 8)
    with pytest.raises(ValueError, match="odd"):
        render(torch.zeros(1, 2, 8), 8, window=4)


def test_psnr_of_identical_images_is_large_and_of_noise_is_small():
    a = torch.rand(2, 8, 8, 3)
    assert (psnr(a, a) > 100).all()
    assert (psnr(a, 1 - a) < 15).all()


def test_a_nan_centre_renders_nan_instead_of_a_bad_index():
    g = torch.rand(1, 8, 8)
    g[..., 2:4] = 0.05
    g[0, 3, 0] = float("nan")
    img = render(g, 16, 5)
    assert torch.isnan(img).any()


def _covering_gaussians(size: int, sigma_px: tuple[float, float], seed: int,
                        k: int = 12) -> torch.Tensor:
    """One Gaussian per cell of a k x k grid at a random place in its cell (k 12: spacing 2.7 px
    at 32 px, about the default fit's 2.8 at 64 px), so every pixel is covered as in a fit; a
    quarter of them pushed onto the left or right border."""
    gen = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(k), torch.arange(k), indexing="ij")
    n = k * k
    g = torch.empty(1, n, 8, dtype=torch.float64)
    g[0, :, 0] = (xs.flatten() + torch.rand(n, generator=gen, dtype=torch.float64)) / k
    g[0, :, 1] = (ys.flatten() + torch.rand(n, generator=gen, dtype=torch.float64)) / k
    border = torch.rand(n, generator=gen) < 0.25
    g[0, border, 0] = (g[0, border, 0] >= 0.5).double()
    lo, hi = sigma_px
    g[..., 2:4] = (lo + (hi - lo) * torch.rand(1, n, 2, generator=gen, dtype=torch.float64)) / size
    g[..., 4] = torch.rand(1, n, generator=gen, dtype=torch.float64) * math.pi
    g[..., 5:8] = torch.rand(1, n, 3, generator=gen, dtype=torch.float64)
    return g


@pytest.mark.parametrize("window", [9, 11])
def test_window_covering_three_sigma_draws_the_dense_image(window):
    # At the largest sigma the window allows (window / 6 px), on the border too, the windowed
    # render is the dense (docs/gaussians.md formula) render to within a fraction of a grey level.
    size = 32
    max_sigma = window / 6
    for sigma in [(max_sigma, max_sigma), (max_sigma / 2, max_sigma)]:
        for seed in range(3):
            g = _covering_gaussians(size, sigma, seed)
            assert float(psnr(render(g, size, window), render_dense(g, size))) > 40.0


def test_sigma_beyond_the_window_is_visible_to_the_dense_renderer():
    # The converse: twice the allowed sigma and the two renderers disagree, so the test above
    # can fail.
    g = _covering_gaussians(32, (3.0, 3.0), seed=0)
    assert float(psnr(render(g, 32, 9), render_dense(g, 32))) < 35.0


@pytest.mark.parametrize("size", [128, 256])
def test_widest_default_gaussian_on_the_border_draws_the_dense_image_at_any_size(size):
    # The default settings' geometry at this size: the widest sigma they allow, on the image
    # border too, is drawn by the windowed renderer as by the dense one.
    settings = load_params(REPO / "params.yaml").extract
    hi = settings.sigma_px(size)[1]
    window = settings.window_px(size)
    for sigma in [(hi, hi), (hi / 2, hi)]:  # 23 x 23 cells: the default fit's slot spacing
        g = _covering_gaussians(size, sigma, seed=size, k=23)
        assert float(psnr(render(g, size, window), render_dense(g, size))) > 40.0


@pytest.mark.parametrize("size", [64, 128, 256])
def test_default_fits_score_the_same_with_the_dense_renderer(size):
    # Real fits at the default settings (512 Gaussians) at this image size: they include
    # Gaussians at the largest sigma and on the border, and the dense reference gives each
    # image the PSNR the fit records, within 0.3 dB.
    settings = load_params(REPO / "params.yaml").extract
    n = 4 if size == 64 else 2
    pixels = torch.from_numpy(np.stack([generate_image(7, i, size) for i in range(n)])) / 255.0
    result = fit_images(pixels.float(), torch.from_numpy(grid_slots(512)), settings)
    g = result.gaussians
    assert float((g[..., 2] * size >= settings.sigma_px(size)[1] * 0.999).float().mean()) > 0.02
    assert bool(((g[..., 0] * size < 1) | (g[..., 0] * size > size - 1)).any())
    dense = psnr(render_dense(g, size), pixels.float())
    assert float(result.psnr.mean()) > 24.0  # a true fit, not holes (12 dB before the window
    # followed the slot spacing)
    assert float((result.psnr - dense).abs().max()) < 0.3
