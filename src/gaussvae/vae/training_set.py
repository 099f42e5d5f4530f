"""What the training loop draws its batches from, in model units, with the square's symmetries.

A training set of n examples under K symmetries (train.symmetries; symmetry.py) has n * K
samples: sample i is example i // K turned or flipped by symmetry i % K (an epoch visits each
example once, under a random symmetry: trainer.epoch_order). Symmetries are applied per batch on
the batch's device, so the K-fold set never sits in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gaussvae.vae.normalization import NormStats, normalize
from gaussvae.vae.symmetry import transform_gaussians, transform_images


def pixel_maps(size: int, count: int, device: torch.device) -> torch.Tensor:
    """(count, S*S) long: row k lists, for each output pixel of an S x S image under symmetry k,
    the flat index of its source pixel (transform_images as a gather)."""
    flat = torch.arange(size * size).reshape(1, size, size, 1).numpy()
    return torch.stack([torch.from_numpy(transform_images(flat, k).reshape(-1).copy())
                        for k in range(count)]).to(device)


@dataclass
class GaussianTrainingSet:
    """Fitted Gaussians (n, N, 8) in stored units; ``orders`` (n, K, N) the order of each fit
    under symmetry k (row 0 the identity; with anchored ordering one table expanded to n);
    ``targets`` (n, S, S, 3) the render term's target images, or None without one."""

    fits: torch.Tensor
    stats: NormStats
    orders: torch.Tensor
    targets: torch.Tensor | None

    def __post_init__(self) -> None:
        self.examples, self.symmetries = len(self.fits), self.orders.shape[1]
        size = None if self.targets is None else self.targets.shape[1]
        self.maps = None if size is None else pixel_maps(size, self.symmetries, self.fits.device)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Model-unit inputs (B, N, 8) and render targets (B, S, S, 3) or None of samples idx."""
        base, k = idx // self.symmetries, idx % self.symmetries
        g = self.fits[base]
        targets = None if self.targets is None else self.targets[base]
        for sym in range(1, self.symmetries):
            rows = (k == sym).nonzero().flatten()
            if len(rows) == 0:
                continue
            order = self.orders[base[rows], sym].unsqueeze(-1).expand(-1, -1, g.shape[-1])
            g[rows] = torch.gather(transform_gaussians(g[rows], sym), 1, order)
            if targets is not None:
                flat = targets[rows].flatten(1, 2)[:, self.maps[sym]]
                targets[rows] = flat.reshape(targets[rows].shape)
        return normalize(g, self.stats), targets
