"""Differentiable 2D Gaussian rasterizer in plain PyTorch (same code on CPU and CUDA).

Parameters per Gaussian, in stored order (see ``CHANNELS``):
  xy    (2) centre as a fraction of the image side, pixel i covers [i/S, (i+1)/S)
  scale (2) standard deviations along the Gaussian's own axes, fraction of the image side
  rot   (1) angle in radians of the first axis, counter-clockwise from +x
  feat  (3) RGB colour in [0, 1]

Blending is normalized, as Image-GS does by default: pixel = sum_i w_i c_i / sum_i w_i. That makes
``feat`` a real colour and the render robust to a uniform error in scale. Each Gaussian is
evaluated only on a ``window`` x ``window`` patch of pixels around its centre: a dense
(Gaussians x pixels) evaluation costs ~190x more on a 2-core CPU (DESIGN.md section 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

CHANNELS: tuple[str, ...] = ("x", "y", "scale_x", "scale_y", "rot", "r", "g", "b")
TYPES: dict[str, slice] = {
    "xy": slice(0, 2),
    "scale": slice(2, 4),
    "rot": slice(4, 5),
    "feat": slice(5, 8),
}
NUM_CHANNELS = len(CHANNELS)
# Pixels no Gaussian reaches get colour 0 rather than 0/0.
_EPS = 1e-8


def _frame(gaussians: torch.Tensor, size: int) -> tuple[torch.Tensor, ...]:
    """Per-Gaussian rows of the map from pixel offsets to the Gaussian's own frame (in sigmas).

    u = a1 dx + a2 dy, v = b1 dx + b2 dy with dx, dy in pixels; each (B, N, 1).
    """
    sx = gaussians[..., 2:3] * size
    sy = gaussians[..., 3:4] * size
    cos = torch.cos(gaussians[..., 4:5])
    sin = torch.sin(gaussians[..., 4:5])
    return cos / sx, sin / sx, -sin / sy, cos / sy


def _weights(gaussians: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor,
             size: int) -> torch.Tensor:
    """Unnormalized weights exp(-(u^2 + v^2)/2) at pixel offsets dx, dy (B, N, K) from centres."""
    a1, a2, b1, b2 = _frame(gaussians, size)
    u = a1 * dx + a2 * dy
    v = b1 * dx + b2 * dy
    return torch.exp(-0.5 * (u * u + v * v))


def _window_geometry(
    gaussians: torch.Tensor, size: int, window: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Offsets dx, dy (B, N, K) in pixels from each centre to its window's pixel centres, and
    flat indices (B, N, K) into a canvas padded by ``window // 2 + 1`` pixels per side.

    The padding takes the parts of windows that fall outside the image, so no clamping or mask
    is needed: one broadcast add makes the indices, and the padding is cropped after blending.
    """
    b = gaussians.shape[0]
    r = window // 2
    pad = r + 1
    side = size + 2 * pad
    device = gaussians.device
    offsets = torch.arange(-r, r + 1, device=device)
    oy, ox = torch.meshgrid(offsets, offsets, indexing="ij")
    oy, ox = oy.reshape(1, 1, -1), ox.reshape(1, 1, -1)
    cx = gaussians[..., 0:1] * size  # (B, N, 1) pixels
    cy = gaussians[..., 1:2] * size
    with torch.no_grad():
        ix0 = torch.floor(cx).clamp(-1, size).long()  # pixel holding the centre
        iy0 = torch.floor(cy).clamp(-1, size).long()
        base = (torch.arange(b, device=device).reshape(-1, 1, 1) * side * side
                + (iy0 + pad) * side + (ix0 + pad))
        flat = base + (oy * side + ox)  # (B, N, K)
    dtype = gaussians.dtype
    dx = (ix0.to(dtype) + 0.5 - cx) + ox.to(dtype)  # (B, N, K)
    dy = (iy0.to(dtype) + 0.5 - cy) + oy.to(dtype)
    return dx, dy, flat, pad


def _blend(gaussians: torch.Tensor, w: torch.Tensor, flat: torch.Tensor, size: int,
           pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalized blend of weights w (B, N, K): image (B, S*S, 3) and denominator (B, S*S, 1)."""
    b, n, k = w.shape
    side = size + 2 * pad
    if torch.is_grad_enabled():  # autograd reference path
        contrib = torch.cat([w.unsqueeze(-1) * gaussians[..., 5:8].unsqueeze(2),
                             w.unsqueeze(-1)], dim=-1)
    else:  # inside _WindowedRender.forward: write in place, no temporary
        contrib = w.new_empty(b, n, k, 4)
        torch.mul(w.unsqueeze(-1), gaussians[..., 5:8].unsqueeze(2), out=contrib[..., :3])
        contrib[..., 3] = w
    acc = w.new_zeros(b * side * side, 4)
    # Row-wise index_add on the flattened canvas: several times faster on CPU than scatter_add
    # on an expanded index.
    acc.index_add_(0, flat.reshape(-1), contrib.reshape(-1, 4))
    acc = acc.reshape(b, side, side, 4)[:, pad:pad + size, pad:pad + size].reshape(b, -1, 4)
    den = acc[..., 3:4] + _EPS
    return acc[..., :3] / den, den


class _WindowedRender(torch.autograd.Function):
    """Windowed normalized blending with a hand-written backward.

    Autograd through the same formula keeps a dozen (B, N, K) intermediates and runs twice as
    many kernels; this backward recomputes the local frame once and reduces over the window in
    place, which is what makes fitting on a laptop CPU affordable (see bench/extract.py).
    """

    @staticmethod
    def forward(ctx, gaussians: torch.Tensor, size: int, window: int) -> torch.Tensor:
        b = gaussians.shape[0]
        dx, dy, flat, pad = _window_geometry(gaussians, size, window)
        w = _weights(gaussians, dx, dy, size)  # (B, N, K)
        image, den = _blend(gaussians, w, flat, size, pad)
        ctx.save_for_backward(gaussians, dx, dy, w, flat, image, den)
        ctx.size, ctx.pad = size, pad
        return image.reshape(b, size, size, 3)

    @staticmethod
    def backward(ctx, grad_image: torch.Tensor):  # type: ignore[override]
        gaussians, dx, dy, w, flat, image, den = ctx.saved_tensors
        size, pad = ctx.size, ctx.pad
        b, n, _ = gaussians.shape
        k = w.shape[-1]
        side = size + 2 * pad
        g = grad_image.reshape(b, -1, 3)
        # d/d numerator (3) and d/d denominator (1) per pixel, zero on the padding, gathered
        # back to the windows.
        per_pixel = g.new_zeros(b, side, side, 4)
        inner = per_pixel[:, pad:pad + size, pad:pad + size]
        inner[..., :3] = (g / den).reshape(b, size, size, 3)
        inner[..., 3] = (-(g * image).sum(-1) / den[..., 0]).reshape(b, size, size)
        gathered = per_pixel.reshape(-1, 4).index_select(0, flat.reshape(-1))
        gathered = gathered.reshape(b, n, k, 4)
        colours = gaussians[..., 5:8]
        grad_feat = torch.einsum("bnk,bnkc->bnc", w, gathered[..., :3])
        grad_w = torch.einsum("bnkc,bnc->bnk", gathered[..., :3], colours) + gathered[..., 3]
        gq = grad_w * w  # d/d(-0.5 (u^2 + v^2))
        a1, a2, b1, b2 = _frame(gaussians, size)
        u = a1 * dx + a2 * dy
        v = b1 * dx + b2 * dy
        gu = -gq * u  # dL/du
        gv = -gq * v
        su = gu.sum(-1, keepdim=True)
        sv = gv.sum(-1, keepdim=True)
        sx = gaussians[..., 2:3] * size
        sy = gaussians[..., 3:4] * size
        grad = torch.empty_like(gaussians)
        # dx = px - cx: d u / d cx = -a1, d v / d cx = -b1 (likewise cy with a2, b2); times
        # size for fractions of the image side.
        grad[..., 0:1] = -(a1 * su + b1 * sv) * size
        grad[..., 1:2] = -(a2 * su + b2 * sv) * size
        # d u / d sx = -u/sx, d v / d sy = -v/sy.
        grad[..., 2:3] = -(gu * u).sum(-1, keepdim=True) / sx * size
        grad[..., 3:4] = -(gv * v).sum(-1, keepdim=True) / sy * size
        # d u / d t = v sy/sx, d v / d t = -u sx/sy.
        grad[..., 4:5] = (gu * v).sum(-1, keepdim=True) * (sy / sx) - (gv * u).sum(
            -1, keepdim=True
        ) * (sx / sy)
        grad[..., 5:8] = grad_feat
        return grad, None, None


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
    return _WindowedRender.apply(gaussians, size, window)


def render_autograd(gaussians: torch.Tensor, size: int, window: int = 9) -> torch.Tensor:
    """Same as ``render`` but differentiated by autograd: the reference for its backward."""
    dx, dy, flat, pad = _window_geometry(gaussians, size, window)
    image, _ = _blend(gaussians, _weights(gaussians, dx, dy, size), flat, size, pad)
    return image.reshape(gaussians.shape[0], size, size, 3)


def render_dense(gaussians: torch.Tensor, size: int) -> torch.Tensor:
    """Reference renderer: every Gaussian at every pixel, no window. For tests and benchmarks."""
    b = gaussians.shape[0]
    coords = torch.arange(size, device=gaussians.device, dtype=gaussians.dtype) + 0.5
    py, px = torch.meshgrid(coords, coords, indexing="ij")
    dx = px.reshape(1, 1, -1) - gaussians[..., 0:1] * size  # (B, N, P)
    dy = py.reshape(1, 1, -1) - gaussians[..., 1:2] * size
    w = _weights(gaussians, dx, dy, size)
    num = torch.einsum("bnp,bnc->bpc", w, gaussians[..., 5:8])
    den = w.sum(dim=1).unsqueeze(-1)
    return (num / (den + _EPS)).reshape(b, size, size, 3)


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
    def from_attrs(cls, attrs: dict) -> RenderSpec:
        fit = attrs["fit_settings"]
        size = int(attrs["image_size"])
        return cls(size, int(attrs["window"]), fit["min_scale_px"] / size,
                   fit["max_scale_px"] / size)


def to_valid(g: torch.Tensor, spec: RenderSpec) -> torch.Tensor:
    """Clamp decoded Gaussians (B, N, 8) into the ranges fits live in, so they can be rendered."""
    return torch.cat([g[..., 0:2].clamp(0.0, 1.0),
                      g[..., 2:4].clamp(spec.min_scale, spec.max_scale),
                      g[..., 4:5],
                      g[..., 5:8].clamp(0.0, 1.0)], dim=-1)  # no in-place: autograd-safe
