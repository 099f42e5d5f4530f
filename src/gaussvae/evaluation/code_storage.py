"""The latent code as stored bytes: what a compressed image costs, and what decoding sees.

A VAE's code is evaluated as it would be stored, not as the float32 posterior mean: ``fp16``
keeps each dimension in 2 bytes (float16), ``8bit`` in 1 byte, uniformly quantized between the
smallest and largest value that dimension takes on the training images (a range that is part of
the decoder, like its weights). Codec anchors (image_codecs.py) get the same budgets.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

BYTES_PER_DIM = {"fp16": 2, "8bit": 1}


def as_fp16(mu: torch.Tensor) -> torch.Tensor:
    """mu (n, latent_dim) as it comes back from float16 storage."""
    return mu.half().float()


@dataclass(frozen=True)
class Uniform8Bit:
    """Uniform 8-bit quantizer per latent dimension over [lo, hi] (each (latent_dim,))."""

    lo: torch.Tensor
    hi: torch.Tensor

    @classmethod
    def fit(cls, mu_train: torch.Tensor) -> Uniform8Bit:
        """The range of each dimension over the training images' codes (n, latent_dim)."""
        return cls(mu_train.min(dim=0).values, mu_train.max(dim=0).values)

    def __call__(self, mu: torch.Tensor) -> torch.Tensor:
        """mu (n, latent_dim) as it comes back from 8-bit storage."""
        span = (self.hi - self.lo).clamp_min(1e-12)
        q = torch.round((mu - self.lo) / span * 255.0).clamp(0, 255)
        return self.lo + q / 255.0 * span
