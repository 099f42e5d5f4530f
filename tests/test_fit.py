import math

import torch

from gaussvae.core.channels import wrap_rotation
from gaussvae.gaussians.fit import canonicalize, fit_images, init_gaussians
from gaussvae.gaussians.render import psnr, render
from gaussvae.gaussians.slots import grid_slots
from tests.conftest import make_params


def _images(tiny_images, n):
    return torch.from_numpy(tiny_images.images[:n]).float() / 255.0


def test_fit_improves_on_its_initialization_and_respects_ranges(tiny_images):
    cfg = make_params().extract
    imgs = _images(tiny_images, 4)
    slots = torch.from_numpy(grid_slots(cfg.num_gaussians))
    before = psnr(render(init_gaussians(imgs, slots, cfg), 32, cfg.window_px(32)), imgs)
    result = fit_images(imgs, slots, cfg)
    assert (result.psnr > before + 2.0).all()
    g = result.gaussians
    size = imgs.shape[1]
    assert (g[..., 0:2] >= 0).all() and (g[..., 0:2] <= 1).all()
    lo, hi = cfg.sigma_px(size)
    assert (g[..., 3] >= lo / size - 1e-6).all()
    assert (g[..., 2] <= hi / size + 1e-6).all()
    assert (g[..., 2] >= g[..., 3]).all()  # canonical: scale_x >= scale_y
    assert (g[..., 4] >= 0).all() and (g[..., 4] < math.pi).all()
    assert (g[..., 5:8] >= 0).all() and (g[..., 5:8] <= 1).all()


def test_batched_fit_equals_single_image_fits(tiny_images):
    cfg = make_params(**{"extract.steps": 8, "extract.plateau_patience": 1000}).extract
    imgs = _images(tiny_images, 3)
    slots = torch.from_numpy(grid_slots(cfg.num_gaussians))
    batched = fit_images(imgs, slots, cfg).gaussians
    singles = torch.cat([fit_images(imgs[i:i + 1], slots, cfg).gaussians for i in range(3)])
    assert torch.allclose(batched, singles, atol=1e-5)


def test_canonicalize_keeps_the_rendered_image():
    gen = torch.Generator().manual_seed(0)
    g = torch.rand(1, 10, 8, generator=gen)
    g[..., 2:4] = 0.03 + 0.05 * torch.rand(1, 10, 2, generator=gen)
    g[..., 4] = (torch.rand(1, 10, generator=gen) - 0.5) * 8  # any angle
    c = canonicalize(g)
    assert (c[..., 2] >= c[..., 3]).all()
    assert (c[..., 4] >= 0).all() and (c[..., 4] < math.pi).all()
    assert torch.allclose(render(g, 16, 9), render(c, 16, 9), atol=1e-5)


def test_canonical_rotation_is_half_open_in_float32():
    # remainder(-1e-9, pi) rounds to float32 pi, outside [0, pi); it must come back as ~0.
    angles = torch.tensor([-1e-9, 0.0, math.pi, 2 * math.pi - 1e-7, 1.0], dtype=torch.float32)
    wrapped = wrap_rotation(angles)
    assert (wrapped >= 0).all() and (wrapped < math.pi).all()
    assert torch.allclose(wrapped[[0, 1, 2, 4]], torch.tensor([0.0, 0.0, 0.0, 1.0]), atol=1e-6)


def test_adam_momentum_setting_reaches_the_fit(tiny_images):
    # The betas are params.yaml settings, not decoration: changing them changes the fit.
    imgs = _images(tiny_images, 2)
    cfg = make_params(**{"extract.steps": 6}).extract
    slots = torch.from_numpy(grid_slots(cfg.num_gaussians))
    low = fit_images(imgs, slots, cfg).gaussians
    high = fit_images(imgs, slots, make_params(**{"extract.steps": 6,
                                                  "extract.adam_beta1": 0.9}).extract).gaussians
    assert not torch.allclose(low, high, atol=1e-4)
