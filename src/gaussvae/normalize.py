"""Stage 'normalize': z-scoring statistics from the TRAIN split only.

Losses are then in normalized units: a model that predicts the training mean scores 1.0 on each
channel (the seed's "stuck at 1.0"), which makes per-type losses comparable across types.

``per_position: false`` gives one mean and std per channel (8,), as the seed did. With grid
ordering, index i is slot i, so most of the xy variance is the slot's position: the xy loss
then looks excellent for free (DESIGN.md 3). ``per_position: true`` gives a mean and std per
index and channel (N, 8): "predict the mean" is then "predict each slot's average Gaussian",
and every type's loss measures what the latent had to carry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gaussvae.render import CHANNELS, TYPES


@dataclass(frozen=True)
class NormStats:
    mean: np.ndarray  # (8,) or (N, 8) stored units
    std: np.ndarray  # same shape

    def to_json(self) -> dict:
        return {
            "channels": list(CHANNELS),
            "types": {k: [s.start, s.stop] for k, s in TYPES.items()},
            "mean": self.mean.astype(float).tolist(),
            "std": self.std.astype(float).tolist(),
        }

    @classmethod
    def from_json(cls, obj: dict) -> NormStats:
        if obj.get("channels") != list(CHANNELS):
            raise ValueError(f"normalization stats are for channels {obj.get('channels')}, "
                             f"expected {list(CHANNELS)}; re-run the normalize stage")
        return cls(np.asarray(obj["mean"], dtype=np.float32),
                   np.asarray(obj["std"], dtype=np.float32))


def compute_stats(train_gaussians: np.ndarray, min_std: float,
                  per_position: bool = False) -> NormStats:
    """Mean and std of training Gaussians (n, N, 8), per channel (8,) or per index and channel
    (N, 8); std floored at min_std."""
    x = train_gaussians.astype(np.float64)
    axes = (0,) if per_position else (0, 1)
    return NormStats(x.mean(axis=axes).astype(np.float32),
                     np.maximum(x.std(axis=axes), min_std).astype(np.float32))


def normalize(x: torch.Tensor, stats: NormStats) -> torch.Tensor:
    """Stored units -> z-scores, on the last axis."""
    mean = torch.as_tensor(stats.mean, dtype=x.dtype, device=x.device)
    std = torch.as_tensor(stats.std, dtype=x.dtype, device=x.device)
    return (x - mean) / std


def denormalize(z: torch.Tensor, stats: NormStats) -> torch.Tensor:
    """z-scores -> stored units, on the last axis."""
    mean = torch.as_tensor(stats.mean, dtype=z.dtype, device=z.device)
    std = torch.as_tensor(stats.std, dtype=z.dtype, device=z.device)
    return z * std + mean
