"""The whole training objective, in normalized units: parameter loss, KL, and the render term.

Reconstruction. ``mse_c`` is the mean squared error of channel c over batch and Gaussians; a
model that predicts the training mean scores 1 on every channel. ``loss_T`` is the SUM of mse_c
over the channels of type T (the channel slices of the encoding the model sees, encoding.py),
and (``WEIGHTINGS``)
  per_type: sum over types of loss_T / channels(T)   (each type weighs the same)
  equal:    mean of mse_c over all 8 channels         (each channel weighs the same)
With the stored channels (``raw``) per_type is the original GaussVAE's formula
loss_xy/2 + loss_scale/2 + loss_rot/1 + loss_feat/3; with ``ellipse`` it is
loss_xy/2 + loss_scale/1 + loss_rot/2 + loss_feat/3. Reported per-type losses are
loss_T / channels(T), so 1.0 means "predicts the mean" for any type.

KL and beta. KL is in nats per sample, summed over latent dimensions. The objective is
  recon + beta * KL / (N * 8)
i.e. beta weighs KL per data element. With ``equal`` weighting and beta = 1 this is the negative
ELBO per element of a Gaussian decoder with variance 1/2 on z-scored data; smaller beta means a
sharper decoder. (The original GaussVAE averaged KL over latent dimensions instead, which made
beta depend on latent_dim and posterior collapse the expected outcome at beta = 1.)

Render term (``train.render_loss_weight`` w > 0). Parameter errors that look small can be large
in pixels, so the decoded Gaussians are rendered and w x their pixel MSE against a target image
is added: the render of the fitted Gaussians (``train.render_target: fit``, rendered once by
``RenderTerm.targets``, not per step) or the image itself (``image``); job.py picks them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch

from gaussvae.gaussians.render import RenderSpec, render, to_valid
from gaussvae.vae.normalization import NormStats, denormalize


def channel_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, N, 8) x 2 -> (8,) mean squared error per channel."""
    return ((pred - target) ** 2).mean(dim=(0, 1))


def type_losses(per_channel: torch.Tensor, types: dict[str, slice]) -> dict[str, torch.Tensor]:
    """Per-type mean of per-channel MSE (1.0 = predicting the mean), from (8,)."""
    return {name: per_channel[s].mean() for name, s in types.items()}


def _per_type(per_channel: torch.Tensor, types: dict[str, slice]) -> torch.Tensor:
    """Sum over types of loss_T / channels(T), loss_T the sum over T's channels."""
    return sum(per_channel[s].sum() / (s.stop - s.start) for s in types.values())


def _equal(per_channel: torch.Tensor, types: dict[str, slice]) -> torch.Tensor:
    return per_channel.mean()


# One function per value of params.Weighting (a test holds the two lists equal).
WEIGHTINGS: dict[str, Callable[[torch.Tensor, dict[str, slice]], torch.Tensor]] = {
    "per_type": _per_type, "equal": _equal}


def reconstruction(per_channel: torch.Tensor, weighting: str,
                   types: dict[str, slice]) -> torch.Tensor:
    """Scalar reconstruction loss from per-channel MSE (8,) under ``weighting``."""
    return WEIGHTINGS[weighting](per_channel, types)


def beta_at(epoch: int, max_beta: float, warmup_epochs: int) -> float:
    """Linear warm-up: 0 at epoch 0, max_beta from epoch ``warmup_epochs`` on (epochs 0-based)."""
    if warmup_epochs <= 0:
        return max_beta
    return max_beta * min(1.0, epoch / warmup_epochs)


@dataclass(frozen=True)
class RenderTerm:
    """weight x pixel MSE between the render of decoded Gaussians and a target image."""

    weight: float
    spec: RenderSpec
    stats: NormStats

    def targets(self, stored: torch.Tensor, batch: int = 256) -> torch.Tensor:
        """Renders (n, S, S, 3) of stored-unit Gaussians (n, N, 8), without a graph."""
        with torch.no_grad():
            return torch.cat([render(stored[i:i + batch], self.spec.image_size,
                                     self.spec.window) for i in range(0, len(stored), batch)])

    def __call__(self, pred: torch.Tensor, target_pixels: torch.Tensor) -> torch.Tensor:
        decoded = to_valid(denormalize(pred, self.stats), self.spec)
        pixels = render(decoded, self.spec.image_size, self.spec.window)
        return self.weight * ((pixels - target_pixels) ** 2).mean()


class LossParts(NamedTuple):
    total: torch.Tensor  # scalar, what is minimized
    recon: torch.Tensor  # scalar, weighted parameter reconstruction
    per_channel: torch.Tensor  # (8,) MSE per channel


@dataclass(frozen=True)
class Objective:
    """recon + beta * KL / (N * 8) [+ render term], for a batch in model units."""

    weighting: str
    types: dict[str, slice]
    render: RenderTerm | None

    def __call__(self, pred: torch.Tensor, target: torch.Tensor, kl: torch.Tensor, beta: float,
                 target_pixels: torch.Tensor | None = None) -> LossParts:
        """pred, target (B, N, 8); kl (B,) nats; target_pixels (B, S, S, 3) with a render term."""
        per_channel = channel_mse(pred, target)
        recon = reconstruction(per_channel, self.weighting, self.types)
        elements = target.shape[1] * target.shape[2]
        total = recon + beta * kl.mean() / elements
        if self.render is not None:
            total = total + self.render(pred, target_pixels)
        return LossParts(total, recon, per_channel)
