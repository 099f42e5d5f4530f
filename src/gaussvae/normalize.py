"""Stage 'normalize': per-channel z-scoring statistics from the TRAIN split only.

Losses are then in normalized units: a model that predicts the training mean scores 1.0 on each
channel (the seed's "stuck at 1.0"), which makes per-type losses comparable across types.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gaussvae.render import CHANNELS, TYPES


@dataclass(frozen=True)
class NormStats:
    mean: np.ndarray  # (8,) stored units
    std: np.ndarray  # (8,)

    def to_json(self) -> dict:
        return {
            "channels": list(CHANNELS),
            "types": {k: [s.start, s.stop] for k, s in TYPES.items()},
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
        }

    @classmethod
    def from_json(cls, obj: dict) -> NormStats:
        if obj.get("channels") != list(CHANNELS):
            raise ValueError(f"normalization stats are for channels {obj.get('channels')}, "
                             f"expected {list(CHANNELS)}; re-run the normalize stage")
        return cls(np.asarray(obj["mean"], dtype=np.float32),
                   np.asarray(obj["std"], dtype=np.float32))


def compute_stats(train_gaussians: np.ndarray, min_std: float) -> NormStats:
    """Mean and std per channel over all training Gaussians (n, N, 8); std floored at min_std."""
    flat = train_gaussians.reshape(-1, train_gaussians.shape[-1]).astype(np.float64)
    return NormStats(flat.mean(axis=0).astype(np.float32),
                     np.maximum(flat.std(axis=0), min_std).astype(np.float32))


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
