"""Reference renderers, slow but obviously right.

``render_dense`` evaluates every Gaussian at every pixel (no window): what any renderer written
from the file's formula (docs/gaussians.md) computes. The extract stage renders a sample of its
fits with it (metrics/extract.json: ``dense_psnr``) to show that the stored Gaussians draw the
same image without our window; tests and bench/extraction_speed.py compare with it too.
``render_autograd`` is the windowed formula of render.py differentiated by autograd: the
reference for the kernel's hand-written backward.
"""

from __future__ import annotations

import torch

from gaussvae.core.channels import FEAT, ROT, SCALE_X, SCALE_Y, X, Y
from gaussvae.gaussians.render import EPS, crop_blend, window_grid


def _weights(gaussians: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor,
             size: int) -> torch.Tensor:
    """exp(-(u^2 + v^2)/2) at pixel offsets dx, dy (B, N, K) from the centres, where (u, v) is
    the offset in the Gaussian's own frame, in sigmas."""
    sx = gaussians[..., SCALE_X] * size
    sy = gaussians[..., SCALE_Y] * size
    cos = torch.cos(gaussians[..., ROT])
    sin = torch.sin(gaussians[..., ROT])
    u = (cos * dx + sin * dy) / sx
    v = (-sin * dx + cos * dy) / sy
    return torch.exp(-0.5 * (u * u + v * v))


def render_autograd(gaussians: torch.Tensor, size: int, window: int = 9) -> torch.Tensor:
    """Same image as render.render, differentiated by autograd."""
    b, n, _ = gaussians.shape
    dx, dy, flat, pad = window_grid(gaussians[..., X] * size, gaussians[..., Y] * size,
                                    size, window)
    dx = dx.unsqueeze(-2).expand(b, n, window, window).reshape(b, n, -1)  # [row, col] flat
    dy = dy.unsqueeze(-1).expand(b, n, window, window).reshape(b, n, -1)
    w = _weights(gaussians, dx, dy, size)
    contrib = torch.cat([w.unsqueeze(-1) * gaussians[..., FEAT].unsqueeze(2), w.unsqueeze(-1)],
                        dim=-1)
    side = size + 2 * pad
    acc = w.new_zeros(b * side * side, 4).index_add(0, flat.reshape(-1), contrib.reshape(-1, 4))
    image, _ = crop_blend(acc, b, size, pad)
    return image.reshape(b, size, size, 3)


def render_dense(gaussians: torch.Tensor, size: int, chunk: int = 1 << 24) -> torch.Tensor:
    """Every Gaussian at every pixel centre, normalized blending: (B, N, 8) -> (B, S, S, 3).

    Pixels are taken in runs of about ``chunk`` / (B N) at a time, so a 512 px image costs
    memory in proportion to the run, not to N x 262,144 pixels.
    """
    b, n, _ = gaussians.shape
    coords = torch.arange(size, device=gaussians.device, dtype=gaussians.dtype) + 0.5
    py, px = torch.meshgrid(coords, coords, indexing="ij")
    px, py = px.reshape(1, 1, -1), py.reshape(1, 1, -1)
    step = max(1, chunk // max(1, b * n))
    out = []
    for start in range(0, size * size, step):
        dx = px[..., start:start + step] - gaussians[..., X] * size  # (B, N, P)
        dy = py[..., start:start + step] - gaussians[..., Y] * size
        w = _weights(gaussians, dx, dy, size)
        num = torch.einsum("bnp,bnc->bpc", w, gaussians[..., FEAT])
        out.append(num / (w.sum(dim=1).unsqueeze(-1) + EPS))
    return torch.cat(out, dim=1).reshape(b, size, size, 3)
