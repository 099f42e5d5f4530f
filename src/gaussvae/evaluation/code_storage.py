"""The latent code as stored bytes: what a compressed image costs, and what decoding sees.

A VAE's code is evaluated as it would be stored, not as the float32 posterior mean: ``fp16``
keeps each dimension in 2 bytes (float16), ``8bit`` in 1 byte, uniformly quantized between the
smallest and largest value that dimension takes on the training images (a range that is part of
the decoder, like its weights). Codec anchors (image_codecs.py) get the same budgets.

For rate-distortion curves (rate_distortion.py) a code is also stored in ``bits`` per dimension
by ``ClippedUniform``: a uniform grid over the full range wastes most of its few levels on the
tails at 2 or 4 bits, so the range is clipped where that costs the training codes least.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from gaussvae.evaluation.image_metrics import mean_psnr

BYTES_PER_DIM = {"fp16": 2, "8bit": 1}
RD_BITS = (2, 4, 6, 8)  # fixed-length bits per dimension on the rate-distortion curves
CLIP_QUANTILES = (0.0, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12)


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


def code_bytes(dims: int, bits: int) -> float:
    """Bytes of a fixed-length code of ``dims`` dimensions at ``bits`` each."""
    return dims * bits / 8


@dataclass(frozen=True)
class ClippedUniform:
    """Uniform quantizer with ``2**bits`` levels per dimension over a clipped range [lo, hi]
    (each (d,)): per dimension, the symmetric quantile range of the training codes (from
    ``CLIP_QUANTILES``) whose quantization error on them is least. At 8 bits this is the full
    range; at 2 it clips the tails, as the optimal uniform quantizer of a Gaussian does. One
    range per dimension cannot overfit 2,400 codes, where a 256-level Lloyd-Max codebook does
    (its levels sit on the training codes, and a plain grid beats it out of sample)."""

    lo: torch.Tensor
    hi: torch.Tensor
    bits: int

    @classmethod
    def fit(cls, codes_train: torch.Tensor, bits: int) -> ClippedUniform:
        x = codes_train.detach().cpu().double()
        qs = torch.tensor([q for p in CLIP_QUANTILES for q in (p, 1.0 - p)], dtype=x.dtype)
        ranges = torch.quantile(x, qs, dim=0).view(len(CLIP_QUANTILES), 2, -1)
        best = None
        for lo, hi in ranges:
            err = ((cls(lo, hi, bits)(x) - x) ** 2).mean(dim=0)
            if best is None:
                best = (err, lo, hi)
            else:
                better = err < best[0]
                best = tuple(torch.where(better, new, old)
                             for new, old in zip((err, lo, hi), best, strict=True))
        return cls(best[1].float(), best[2].float(), bits)

    def __call__(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (n, d) as they come back from storage."""
        lo, hi = self.lo.to(codes), self.hi.to(codes)
        top = 2**self.bits - 1
        span = (hi - lo).clamp_min(1e-12)
        q = torch.round((codes - lo) / span * top).clamp(0, top)
        return lo + q / top * span


def stored_codes(codes_train: torch.Tensor, codes: torch.Tensor
                 ) -> dict[str, tuple[float, torch.Tensor]]:
    """``codes`` (n, d) as they come back from storage at each of RD_BITS bits per dimension
    (``ClippedUniform`` fitted on ``codes_train``) and in float16, keyed ``2bit`` ... ``8bit``,
    ``fp16``, with the bytes each image's code takes."""
    dims = codes.shape[1]
    out = {f"{bits}bit": (code_bytes(dims, bits), ClippedUniform.fit(codes_train, bits)(codes))
           for bits in RD_BITS}
    out["fp16"] = (code_bytes(dims, 16), as_fp16(codes))
    return out


def code_points(codes_train: torch.Tensor, codes: torch.Tensor,
                decode: Callable[[torch.Tensor], np.ndarray], originals: np.ndarray,
                ) -> dict[str, dict[str, float]]:
    """Per storage (``2bit`` ... ``8bit``, ``fp16``): bytes per image and mean PSNR of
    ``decode(stored codes)`` (uint8 images) against ``originals``."""
    return {name: {"bytes": size, "psnr": mean_psnr(decode(z), originals)}
            for name, (size, z) in stored_codes(codes_train, codes).items()}
