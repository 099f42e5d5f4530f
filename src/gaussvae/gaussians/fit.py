"""Batched fitting of 2D Gaussians to images (Adam on a pixel loss, projected to valid ranges).

Ranges after every step (the file's schema, docs/gaussians.md):
  xy in [0, 1], and with anchored ordering within ``max_offset`` slot spacings of the
  Gaussian's slot along x and y; sigma in [min_scale, max_scale] slot spacings; colour in [0, 1].
Every range, the start and the step are the same for an image and its flips and quarter turns
(the slot set, the box round each slot and the colour sampled at each slot map onto themselves),
so the anchored fit of a turned image is the turned fit, with its Gaussians permuted among the
slots (tests/test_symmetry.py).
Every length of the fit is in slot spacings and its learning rates are in fractions of the image
side (or on log-sigma), so the fit of an image at 256 px takes the steps the fit of the same
image at 64 px takes, with four times the pixels per length (core/geometry.py).
After the fit each Gaussian is put in canonical form: scale_x >= scale_y, rot in [0, pi).
The loss is the SUM over images of each image's mean squared error, so every image's gradient,
and with Adam its whole trajectory, does not depend on which other images share the batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gaussvae.core.channels import ANGLE, FEAT, INDEX, NUM_CHANNELS, ROT, SCALE, XY, wrap_rotation
from gaussvae.core.params import ExtractParams
from gaussvae.gaussians.render import psnr, render


@dataclass(frozen=True)
class FitResult:
    gaussians: torch.Tensor  # (B, N, 8) canonical, stored units
    psnr: torch.Tensor  # (B,) dB of the final render against the image
    steps: int  # Adam steps taken


def init_gaussians(images: torch.Tensor, slots: torch.Tensor,
                   settings: ExtractParams) -> torch.Tensor:
    """Gaussians (B, N, 8) on the slots, coloured by the (3x3-smoothed) image at each slot.

    images: (B, S, S, 3) in [0, 1]; slots: (N, 2) in [0, 1]. Round, with sigma
    ``settings.init_scale`` x the slot spacing: under normalized blending a smaller start is a
    sharper first render, so the fit needs fewer steps.
    """
    b, size = images.shape[0], images.shape[1]
    n = slots.shape[0]
    smooth = F.avg_pool2d(images.permute(0, 3, 1, 2), 3, stride=1, padding=1,
                          count_include_pad=False)  # (B, 3, S, S)
    # Bilinear between pixel centres: a slot on a pixel boundary (the lattice's middle row at
    # an even size) takes both sides equally, so a flipped image starts with flipped colours.
    where = (slots * 2 - 1).to(images.dtype).expand(b, 1, n, 2)
    colours = F.grid_sample(smooth, where, mode="bilinear", padding_mode="border",
                            align_corners=False)[:, :, 0].permute(0, 2, 1)  # (B, N, 3)
    lo, hi = settings.sigma_px(size)
    sigma = min(max(settings.init_scale * settings.spacing_px(size), lo), hi) / size
    out = torch.empty(b, n, NUM_CHANNELS, dtype=images.dtype, device=images.device)
    out[..., XY] = slots
    out[..., SCALE] = sigma
    out[..., ROT] = 0.0
    out[..., FEAT] = colours
    return out


def canonicalize(gaussians: torch.Tensor) -> torch.Tensor:
    """Same Gaussians with scale_x >= scale_y and rot in [0, pi).

    (sx, sy, t) and (sy, sx, t + pi/2) are the same ellipse, and t ~ t + pi.
    """
    g = gaussians.clone()
    i, j = INDEX["scale_x"], INDEX["scale_y"]
    swap = g[..., i] < g[..., j]
    sx, sy = g[..., i].clone(), g[..., j].clone()
    g[..., i] = torch.where(swap, sy, sx)
    g[..., j] = torch.where(swap, sx, sy)
    g[..., ANGLE] = wrap_rotation(g[..., ANGLE] + swap.to(g.dtype) * (math.pi / 2))
    return g


def fit_images(
    images: torch.Tensor,
    slots: torch.Tensor,
    settings: ExtractParams,
    renderer: Callable[[torch.Tensor, int, int], torch.Tensor] = render,
) -> FitResult:
    """Fit ``settings.num_gaussians`` Gaussians to each image of a batch.

    images: (B, S, S, 3) float in [0, 1] on the target device; slots: (N, 2). ``renderer``
    draws the image the fit optimizes and the reported PSNR is measured with: the windowed
    renderer (render.py) in the pipeline, the dense or autograd reference (dense_render.py) in
    bench/extraction_speed.py.
    Stops after ``settings.steps`` steps, or earlier when the batch's mean PSNR has gained less
    than ``plateau_min_gain_db`` over ``plateau_patience`` steps.

    Adam's betas are parameters because a fit of a dozen steps is far from Adam's usual regime:
    with beta1 0.9 / beta2 0.999 the momentum overshoots for most of the budget; less momentum
    does not (bench/extraction_speed.py compares the two).
    """
    size = images.shape[1]
    init = init_gaussians(images, slots, settings)
    xy = init[..., XY].clone().requires_grad_(True)
    log_s = torch.log(init[..., SCALE]).requires_grad_(True)
    rot = init[..., ROT].clone().requires_grad_(True)
    feat = init[..., FEAT].clone().requires_grad_(True)
    opt = torch.optim.Adam([
        {"params": [xy], "lr": settings.lr_xy},
        {"params": [log_s], "lr": settings.lr_scale},
        {"params": [rot], "lr": settings.lr_rot},
        {"params": [feat], "lr": settings.lr_feat},
    ], betas=(settings.adam_beta1, settings.adam_beta2))
    window = settings.window_px(size)
    reach = settings.offset_bound()
    xy_lo = (slots - reach).clamp(0.0, 1.0) if math.isfinite(reach) else torch.zeros_like(slots)
    xy_hi = (slots + reach).clamp(0.0, 1.0) if math.isfinite(reach) else torch.ones_like(slots)
    lo, hi = settings.sigma_px(size)
    log_lo, log_hi = math.log(lo / size), math.log(hi / size)
    history: list[float] = []
    steps = 0
    for steps in range(1, settings.steps + 1):  # noqa: B007 (steps is reported)
        g = torch.cat([xy, log_s.exp(), rot, feat], dim=-1)
        mse = ((renderer(g, size, window) - images) ** 2).flatten(1).mean(dim=1)  # (B,)
        opt.zero_grad(set_to_none=True)
        mse.sum().backward()
        opt.step()
        with torch.no_grad():
            xy.clamp_(xy_lo, xy_hi)
            log_s.clamp_(log_lo, log_hi)
            feat.clamp_(0.0, 1.0)
        history.append(float((-10.0 * torch.log10(mse.detach().clamp_min(1e-12))).mean()))
        p, min_gain = settings.plateau_patience, settings.plateau_min_gain_db
        if len(history) > p and max(history[-p:]) - max(history[:-p]) < min_gain:
            break
    with torch.no_grad():
        g = canonicalize(torch.cat([xy, log_s.exp(), rot, feat], dim=-1))
        final_psnr = psnr(renderer(g, size, window), images)
    return FitResult(gaussians=g.detach(), psnr=final_psnr, steps=steps)
