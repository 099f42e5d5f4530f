"""Normalization: z-scoring statistics from the TRAIN split only, and the maps in and out.

Losses are then in normalized units: a model that predicts the training mean scores 1.0 on each
channel (the original GaussVAE's "stuck at 1.0"), which makes per-type losses comparable across
types.

``per_position: false`` gives one mean and std per channel (8,), as the original GaussVAE did.
With grid ordering, index i is slot i, so most of the xy variance is the slot's position: the
xy loss then looks excellent for free. ``per_position: true`` gives a mean and std per
index and channel (N, 8): "predict the mean" is then "predict each slot's average Gaussian",
and every type's loss measures what the latent had to carry.

``encoding`` (encoding.py) is the representation the VAE sees: ``raw`` (stored channels) or
``ellipse``. Statistics are kept twice: ``mean``/``std`` of the encoded channels (model units)
and ``raw_mean``/``raw_std`` of the stored channels, in which evaluation reports its losses so
that runs with different encodings stay comparable.

Torch-free: ``normalize``/``denormalize`` take numpy arrays or torch tensors (array API), so the
normalize stage does not load torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from array_api_compat import array_namespace, device

from gaussvae.core.channels import CHANNELS
from gaussvae.core.errors import StaleFileError
from gaussvae.vae import encoding


@dataclass(frozen=True)
class NormStats:
    mean: np.ndarray  # (8,) or (N, 8) encoded units (what the VAE sees)
    std: np.ndarray  # same shape
    encoding: str = "raw"
    raw_mean: np.ndarray | None = None  # stored units; None = same as mean (raw encoding)
    raw_std: np.ndarray | None = None

    @property
    def types(self) -> dict[str, slice]:
        """Channel slices per parameter type in model units."""
        return encoding.types(self.encoding)

    def raw(self) -> NormStats:
        """Statistics of the stored channels (the units evaluation reports losses in)."""
        if self.raw_mean is None:
            return NormStats(self.mean, self.std)
        return NormStats(self.raw_mean, self.raw_std)

    def to_json(self) -> dict:
        raw = self.raw()
        return {
            "encoding": self.encoding,
            "channels": list(encoding.channels(self.encoding)),
            "types": {k: [s.start, s.stop] for k, s in self.types.items()},
            "mean": self.mean.astype(float).tolist(),
            "std": self.std.astype(float).tolist(),
            "raw_channels": list(CHANNELS),
            "raw_mean": raw.mean.astype(float).tolist(),
            "raw_std": raw.std.astype(float).tolist(),
        }

    @classmethod
    def from_json(cls, obj: dict) -> NormStats:
        """Statistics from their JSON (data/norm_stats.json, or a model file's copy); one line
        when they come from another version of this package."""
        name = obj.get("encoding") if isinstance(obj, dict) else None
        if name not in encoding.ENCODINGS or obj.get("raw_channels") != list(CHANNELS):
            raise StaleFileError("normalization statistics of another version (no known "
                                 "encoding or raw statistics); re-run the normalize stage "
                                 "(dvc repro normalize)")

        def arr(key: str) -> np.ndarray:
            return np.asarray(obj[key], dtype=np.float32)

        return cls(arr("mean"), arr("std"), name, arr("raw_mean"), arr("raw_std"))


def _moments(x: np.ndarray, min_std: float, per_position: bool) -> tuple[np.ndarray, ...]:
    axes = (0,) if per_position else (0, 1)
    x = x.astype(np.float64)
    return (x.mean(axis=axes).astype(np.float32),
            np.maximum(x.std(axis=axes), min_std).astype(np.float32))


def compute_stats(train_gaussians: np.ndarray, min_std: float, per_position: bool = False,
                  encoding_name: str = "raw") -> NormStats:
    """Mean and std of training Gaussians (n, N, 8), per channel (8,) or per index and channel
    (N, 8), of the encoded and of the stored channels; std floored at min_std."""
    encoded = encoding.encode(train_gaussians.astype(np.float64), encoding_name)
    mean, std = _moments(encoded, min_std, per_position)
    raw_mean, raw_std = _moments(train_gaussians, min_std, per_position)
    return NormStats(mean, std, encoding_name, raw_mean, raw_std)


def _affine(stats: NormStats, like: Any) -> tuple[Any, Any]:
    xp = array_namespace(like)
    return (xp.asarray(stats.mean, dtype=like.dtype, device=device(like)),
            xp.asarray(stats.std, dtype=like.dtype, device=device(like)))


def normalize(x: Any, stats: NormStats) -> Any:
    """Stored units -> model units (encoded, then z-scored), on the last axis."""
    mean, std = _affine(stats, x)
    return (encoding.encode(x, stats.encoding) - mean) / std


def denormalize(z: Any, stats: NormStats) -> Any:
    """Model units -> stored units (canonical), on the last axis; differentiable."""
    mean, std = _affine(stats, z)
    return encoding.decode(z * std + mean, stats.encoding)
