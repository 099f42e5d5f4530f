"""Differentiable 2D Gaussian rasterizer in plain PyTorch (same code on CPU and CUDA).

Parameters per Gaussian, in stored order (core/channels.py):
  xy    (2) centre as a fraction of the image side, pixel i covers [i/S, (i+1)/S)
  scale (2) standard deviations along the Gaussian's own axes, fraction of the image side
  rot   (1) angle in radians of the first axis, from +x (columns) towards +y (rows, downwards)
  feat  (3) RGB colour in [0, 1]

Blending is normalized, as Image-GS does by default: pixel = sum_i w_i c_i / sum_i w_i. That makes
``feat`` a real colour and the render robust to a uniform error in scale. Each Gaussian is
evaluated only on a ``window`` x ``window`` patch of pixels around its centre, because a dense
(Gaussians x pixels) evaluation costs two orders of magnitude more (bench/extraction_speed.py
measures it). The dense and autograd references live in dense_render.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from gaussvae.core.channels import FEAT, NUM_CHANNELS, ROT, SCALE, SCALE_X, SCALE_Y, XY, X, Y
from gaussvae.core.params import ExtractParams

# Pixels no Gaussian reaches get colour 0 rather than 0/0.
EPS = 1e-8


def window_grid(cx: torch.Tensor, cy: torch.Tensor, size: int, window: int
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Where each Gaussian's window lies: per-axis offsets and canvas indices.

    cx, cy: centres (B, N, 1) in pixels. Returns dx (B, N, W) and dy (B, N, W), the offsets in
    pixels from each centre to its window's pixel centres along x (columns) and y (rows); flat
    indices (B, N, W*W), row-major, into a canvas padded by ``pad = window // 2 + 1`` pixels per
    side; and pad. The padding takes the parts of windows that fall outside the image, so no
    clamping or mask is needed, and it is cropped after blending. A NaN centre (a diverged
    model) maps to a valid index, so the NaN reaches the loss, where training reports it.
    """
    b = cx.shape[0]
    r = window // 2
    pad = r + 1
    side = size + 2 * pad
    offsets = torch.arange(-r, r + 1, device=cx.device)
    with torch.no_grad():
        ix0 = torch.nan_to_num(torch.floor(cx), nan=-1.0).clamp(-1, size)  # centre pixel
        iy0 = torch.nan_to_num(torch.floor(cy), nan=-1.0).clamp(-1, size)
        base = (torch.arange(b, device=cx.device).reshape(-1, 1, 1) * side * side
                + (iy0.long() + pad) * side + (ix0.long() + pad))
        flat = base + (offsets.reshape(-1, 1) * side + offsets.reshape(1, -1)).reshape(1, 1, -1)
    dx = (ix0 + 0.5 - cx) + offsets.to(cx.dtype)  # (B, N, W): column offsets, pixels
    dy = (iy0 + 0.5 - cy) + offsets.to(cy.dtype)  # row offsets
    return dx, dy, flat, pad


def crop_blend(acc: torch.Tensor, b: int, size: int, pad: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded canvas sums (b * side^2, 4) of (w r, w g, w b, w) -> image (B, S*S, 3) and the
    denominator (B, S*S, 1) of normalized blending."""
    side = size + 2 * pad
    acc = acc.reshape(b, side, side, 4)[:, pad:pad + size, pad:pad + size].reshape(b, -1, 4)
    den = acc[..., 3:4] + EPS
    return acc[..., :3] / den, den


def conic(gaussians: torch.Tensor, size: int) -> torch.Tensor:
    """Inverse covariance (A, B, C) in pixels^-2, (B, N, 3): the exponent of a Gaussian at
    pixel offset (dx, dy) is -(A dx^2 + 2 B dx dy + C dy^2) / 2. Plain autograd: (B, N) sized.
    """
    sx = gaussians[..., SCALE_X] * size
    sy = gaussians[..., SCALE_Y] * size
    cos = torch.cos(gaussians[..., ROT])
    sin = torch.sin(gaussians[..., ROT])
    ix, iy = 1.0 / (sx * sx), 1.0 / (sy * sy)
    return torch.cat([cos * cos * ix + sin * sin * iy, cos * sin * (ix - iy),
                      sin * sin * ix + cos * cos * iy], dim=-1)


class _WindowedRender(torch.autograd.Function):
    """Windowed normalized blending with a hand-written, separable backward.

    The window is a product of an x axis and a y axis of ``window`` offsets each, so with the
    conic form the exponent is -A dx^2/2 (per column) - C dy^2/2 (per row) - B dx dy: the
    (B, N, window^2) weights take one broadcast add, one multiply-add and one exp, and every
    gradient is a sum over rows or columns of dL/d(exponent) times a per-axis factor. This
    takes a third of the full-size tensor passes of evaluating the rotated frame per pixel
    (bench/extraction_speed.py). Inputs: centres cx, cy (B, N, 1) in pixels, inverse covariances
    inv_cov (B, N, 3) (``conic``), colours (B, N, 3).
    """

    @staticmethod
    def forward(ctx, cx: torch.Tensor, cy: torch.Tensor, inv_cov: torch.Tensor,
                colours: torch.Tensor, size: int, window: int) -> torch.Tensor:
        b, n, _ = cx.shape
        dx, dy, flat, pad = window_grid(cx, cy, size, window)
        a, bb, c = inv_cov[..., 0:1], inv_cov[..., 1:2], inv_cov[..., 2:3]
        e = (-0.5 * a * dx * dx).unsqueeze(-2) + (-0.5 * c * dy * dy).unsqueeze(-1)  # [row, col]
        e.addcmul_((-bb * dy).unsqueeze(-1), dx.unsqueeze(-2))
        w = e.exp_().reshape(b, n, window * window)
        contrib = w.new_empty(b, n, window * window, 4)
        torch.mul(w.unsqueeze(-1), colours.unsqueeze(2), out=contrib[..., :3])
        contrib[..., 3] = w
        side = size + 2 * pad
        acc = w.new_zeros(b * side * side, 4)
        # Row-wise index_add on the flattened canvas: several times faster on CPU than
        # scatter_add on an expanded index.
        acc.index_add_(0, flat.reshape(-1), contrib.reshape(-1, 4))
        image, den = crop_blend(acc, b, size, pad)
        ctx.save_for_backward(inv_cov, colours, dx, dy, w, flat, image, den)
        ctx.size, ctx.pad, ctx.window = size, pad, window
        return image.reshape(b, size, size, 3)

    @staticmethod
    def backward(ctx, grad_image: torch.Tensor):  # type: ignore[override]
        inv_cov, colours, dx, dy, w, flat, image, den = ctx.saved_tensors
        size, pad, window = ctx.size, ctx.pad, ctx.window
        b, n, k = w.shape
        side = size + 2 * pad
        g = grad_image.reshape(b, -1, 3)
        # d/d numerator (3) and d/d denominator (1) per pixel, zero on the padding, gathered
        # back to the windows.
        per_pixel = g.new_zeros(b, side, side, 4)
        inner = per_pixel[:, pad:pad + size, pad:pad + size]
        inner[..., :3] = (g / den).reshape(b, size, size, 3)
        inner[..., 3] = (-(g * image).sum(-1) / den[..., 0]).reshape(b, size, size)
        gathered = per_pixel.reshape(-1, 4).index_select(0, flat.reshape(-1))
        gathered = gathered.reshape(b * n, k, 4)
        # Two batched mat-vecs on the whole 4-channel rows (no strided slices): dL/dw =
        # gathered . (r, g, b, 1), and dL/dcolour = sum over the window of w * gathered.
        with_one = torch.cat([colours, torch.ones_like(colours[..., :1])], dim=-1)
        grad_w = torch.bmm(gathered, with_one.reshape(b * n, 4, 1)).reshape(b, n, k)
        grad_colours = torch.bmm(w.reshape(b * n, 1, k), gathered).reshape(b, n, 4)[..., :3]
        ge = (grad_w * w).reshape(b, n, window, window)  # dL/d(exponent), [row, col]
        per_col = ge.sum(-2)  # (B, N, W)
        per_row = ge.sum(-1)
        cross = torch.einsum("bnyx,bnx->bny", ge, dx)  # sum over columns of ge * dx, per row
        sum_dx = (per_col * dx).sum(-1, keepdim=True)  # sum of ge * dx over the window
        sum_dy = (per_row * dy).sum(-1, keepdim=True)
        a, bb, c = inv_cov[..., 0:1], inv_cov[..., 1:2], inv_cov[..., 2:3]
        grad_conic = torch.cat([-0.5 * (per_col * dx * dx).sum(-1, keepdim=True),
                                -(cross * dy).sum(-1, keepdim=True),
                                -0.5 * (per_row * dy * dy).sum(-1, keepdim=True)], dim=-1)
        # dx = const - cx, so d(exponent)/d cx = A dx + B dy (and likewise for cy).
        grad_cx = a * sum_dx + bb * sum_dy
        grad_cy = c * sum_dy + bb * sum_dx
        return grad_cx, grad_cy, grad_conic, grad_colours, None, None


def render(gaussians: torch.Tensor, size: int, window: int = 9) -> torch.Tensor:
    """Render (B, N, 8) Gaussians to (B, size, size, 3) images with windowed normalized blending.

    Each Gaussian touches the ``window`` x ``window`` pixels around the pixel holding its centre;
    its weight is cut to zero outside that window and outside the image. Differentiable with
    respect to ``gaussians`` (hand-written backward, checked against autograd in the tests).
    """
    if gaussians.ndim != 3 or gaussians.shape[-1] != NUM_CHANNELS:
        raise ValueError(f"gaussians must have shape (B, N, 8), got {tuple(gaussians.shape)}")
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be a positive odd integer, got {window}")
    return _WindowedRender.apply(gaussians[..., X] * size, gaussians[..., Y] * size,
                                 conic(gaussians, size), gaussians[..., FEAT], size, window)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of images in [0, 1], shape (B, H, W, C) -> (B,)."""
    mse = ((a - b) ** 2).flatten(1).mean(dim=1).clamp_min(1e-12)
    return -10.0 * torch.log10(mse)


@dataclass(frozen=True)
class RenderSpec:
    """How stored Gaussians become pixels, read from gaussians.h5 attributes."""

    image_size: int
    window: int
    min_scale: float  # fraction of the image side
    max_scale: float

    @classmethod
    def from_settings(cls, size: int, settings: ExtractParams) -> RenderSpec:
        """The spec of fits made at ``size`` px under ``settings`` (params.yaml ``extract``)."""
        lo, hi = settings.sigma_px(size)
        return cls(size, settings.window_px(size), lo / size, hi / size)

    @classmethod
    def from_attrs(cls, attrs: dict) -> RenderSpec:
        """The spec a gaussians.h5 records (its ``image_size``, ``window``, ``scale_range``)."""
        lo, hi = attrs["scale_range"]
        return cls(int(attrs["image_size"]), int(attrs["window"]), float(lo), float(hi))

    def at_size(self, size: int) -> RenderSpec:
        """The same Gaussians drawn at ``size`` pixels a side. They are resolution-free (every
        length is a fraction of the side), so only the window, in pixels, grows with the image:
        it keeps covering the same part of every Gaussian."""
        if size == self.image_size:
            return self
        reach = math.ceil((self.window // 2) * size / self.image_size)
        return RenderSpec(size, 2 * reach + 1, self.min_scale, self.max_scale)


def render_uint8(g: torch.Tensor, spec: RenderSpec, batch: int = 64) -> np.ndarray:
    """Stored-unit Gaussians (B, N, 8), clamped into the ranges fits live in, rendered to
    (B, S, S, 3) uint8 images by ``spec``."""
    outs = []
    with torch.no_grad():
        for i in range(0, len(g), batch):
            img = render(to_valid(g[i:i + batch], spec), spec.image_size, spec.window)
            outs.append((img.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).cpu().numpy())
    return np.concatenate(outs) if outs else np.empty((0, spec.image_size, spec.image_size, 3),
                                                      np.uint8)


def to_valid(g: torch.Tensor, spec: RenderSpec) -> torch.Tensor:
    """Clamp decoded Gaussians (B, N, 8) into the ranges fits live in, so they can be rendered."""
    return torch.cat([g[..., XY].clamp(0.0, 1.0),
                      g[..., SCALE].clamp(spec.min_scale, spec.max_scale),
                      g[..., ROT],
                      g[..., FEAT].clamp(0.0, 1.0)], dim=-1)  # no in-place: autograd-safe
