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


def _weights_and_colours(
    gaussians: torch.Tensor, px: torch.Tensor, py: torch.Tensor, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unnormalized weights of every Gaussian at pixel centres ``(px, py)`` (pixel units).

    gaussians: (B, N, 8); px, py: (B, N, K) pixel-centre coordinates. Returns w (B, N, K).
    """
    cx = gaussians[..., 0:1] * size  # (B, N, 1) pixels
    cy = gaussians[..., 1:2] * size
    sx = gaussians[..., 2:3] * size
    sy = gaussians[..., 3:4] * size
    cos = torch.cos(gaussians[..., 4:5])
    sin = torch.sin(gaussians[..., 4:5])
    dx = px - cx
    dy = py - cy
    u = (cos * dx + sin * dy) / sx  # coordinates in the Gaussian's own frame, in sigmas
    v = (cos * dy - sin * dx) / sy
    return torch.exp(-0.5 * (u * u + v * v)), gaussians[..., 5:8]


def _window_indices(
    gaussians: torch.Tensor, size: int, window: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pixel centres (px, py) (B, N, K) of each Gaussian's window, an inside mask, flat indices."""
    r = window // 2
    offsets = torch.arange(-r, r + 1, device=gaussians.device)
    oy, ox = torch.meshgrid(offsets, offsets, indexing="ij")
    ix = torch.floor(gaussians[..., 0:1] * size).long() + ox.reshape(1, 1, -1)  # (B, N, K)
    iy = torch.floor(gaussians[..., 1:2] * size).long() + oy.reshape(1, 1, -1)
    inside = (ix >= 0) & (ix < size) & (iy >= 0) & (iy < size)
    # Index into the batch's pixels flattened to (B * size * size,): row-wise index_add and
    # index_select run several times faster on CPU than scatter_add/gather on an expanded index.
    image_base = torch.arange(ix.shape[0], device=ix.device).reshape(-1, 1, 1) * (size * size)
    flat = image_base + iy.clamp(0, size - 1) * size + ix.clamp(0, size - 1)
    dtype = gaussians.dtype
    return ix.to(dtype) + 0.5, iy.to(dtype) + 0.5, inside.to(dtype), flat


class _WindowedRender(torch.autograd.Function):
    """Windowed normalized blending with a hand-written backward.

    Autograd through the same formula keeps a dozen (B, N, K) intermediates and runs twice as
    many kernels; this backward recomputes the local frame once and reduces over the window in
    place, which is what makes fitting on a laptop CPU affordable (see bench/extract.py).
    """

    @staticmethod
    def forward(ctx, gaussians: torch.Tensor, size: int, window: int) -> torch.Tensor:
        b, n, _ = gaussians.shape
        px, py, inside, flat = _window_indices(gaussians, size, window)
        w, colours = _weights_and_colours(gaussians, px, py, size)
        w = w * inside  # (B, N, K)
        contrib = torch.cat([w.unsqueeze(-1) * colours.unsqueeze(2), w.unsqueeze(-1)], dim=-1)
        acc = gaussians.new_zeros(b * size * size, 4)
        acc.index_add_(0, flat.reshape(-1), contrib.reshape(-1, 4))
        acc = acc.reshape(b, size * size, 4)
        den = acc[..., 3:4] + _EPS
        image = acc[..., :3] / den  # (B, P, 3)
        ctx.save_for_backward(gaussians, px, py, w, flat, image, den)
        ctx.size = size
        return image.reshape(b, size, size, 3)

    @staticmethod
    def backward(ctx, grad_image: torch.Tensor):  # type: ignore[override]
        gaussians, px, py, w, flat, image, den = ctx.saved_tensors
        size = ctx.size
        b, n, _ = gaussians.shape
        k = w.shape[-1]
        g = grad_image.reshape(b, -1, 3)
        # d/d numerator (3) and d/d denominator (1) per pixel, gathered back to the windows.
        per_pixel = torch.cat([g / den, -(g * image).sum(-1, keepdim=True) / den], dim=-1)
        gathered = per_pixel.reshape(-1, 4).index_select(0, flat.reshape(-1))
        gathered = gathered.reshape(b, n, k, 4)
        colours = gaussians[..., 5:8]
        grad_feat = torch.einsum("bnk,bnkc->bnc", w, gathered[..., :3])
        grad_w = torch.einsum("bnkc,bnc->bnk", gathered[..., :3], colours) + gathered[..., 3]
        gq = grad_w * w  # d/d(-0.5 (u^2 + v^2)), zero outside the window and image
        # Local frame again (cheaper than saving it): u, v in sigmas.
        cx = gaussians[..., 0:1] * size
        cy = gaussians[..., 1:2] * size
        sx = gaussians[..., 2:3] * size
        sy = gaussians[..., 3:4] * size
        cos = torch.cos(gaussians[..., 4:5])
        sin = torch.sin(gaussians[..., 4:5])
        dx = px - cx
        dy = py - cy
        u = (cos * dx + sin * dy) / sx
        v = (cos * dy - sin * dx) / sy
        gu = -gq * u  # dL/du
        gv = -gq * v
        su = gu.sum(-1, keepdim=True)
        sv = gv.sum(-1, keepdim=True)
        grad = torch.empty_like(gaussians)
        # d u / d cx = -cos/sx, d v / d cx = sin/sy; d u / d cy = -sin/sx, d v / d cy = -cos/sy.
        grad[..., 0:1] = (-cos / sx * su + sin / sy * sv) * size
        grad[..., 1:2] = (-sin / sx * su - cos / sy * sv) * size
        # d u / d sx = -u/sx, d v / d sy = -v/sy (pixel units; times size for fractions).
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
    b, n, _ = gaussians.shape
    with torch.no_grad():
        px, py, inside, flat = _window_indices(gaussians, size, window)
    w, colours = _weights_and_colours(gaussians, px, py, size)
    w = w * inside
    contrib = torch.cat([w.unsqueeze(-1) * colours.unsqueeze(2), w.unsqueeze(-1)], dim=-1)
    acc = gaussians.new_zeros(b * size * size, 4).index_add(0, flat.reshape(-1),
                                                            contrib.reshape(-1, 4))
    acc = acc.reshape(b, size * size, 4)
    return (acc[..., :3] / (acc[..., 3:4] + _EPS)).reshape(b, size, size, 3)


def render_dense(gaussians: torch.Tensor, size: int) -> torch.Tensor:
    """Reference renderer: every Gaussian at every pixel, no window. For tests and benchmarks."""
    b, n, _ = gaussians.shape
    coords = torch.arange(size, device=gaussians.device, dtype=gaussians.dtype) + 0.5
    py, px = torch.meshgrid(coords, coords, indexing="ij")
    px = px.reshape(1, 1, -1).expand(b, n, -1)
    py = py.reshape(1, 1, -1).expand(b, n, -1)
    w, colours = _weights_and_colours(gaussians, px, py, size)  # (B, N, P)
    num = torch.einsum("bnp,bnc->bpc", w, colours)
    den = w.sum(dim=1).unsqueeze(-1)
    return (num / (den + _EPS)).reshape(b, size, size, 3)


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of images in [0, 1], shape (B, H, W, C) -> (B,)."""
    mse = ((a - b) ** 2).flatten(1).mean(dim=1).clamp_min(1e-12)
    return -10.0 * torch.log10(mse)
