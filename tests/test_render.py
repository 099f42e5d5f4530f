import math

import pytest
import torch

from gaussvae.reference_render import render_autograd, render_dense
from gaussvae.render import psnr, render


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
