"""VAE objective in normalized units, with the seed's per-type weighting.

Reconstruction. ``mse_c`` is the mean squared error of channel c over batch and Gaussians; a
model that predicts the training mean scores 1 on every channel. ``loss_T`` is the SUM of mse_c
over the channels of type T, and
  per_type: loss_xy/2 + loss_scale/2 + loss_rot/1 + loss_feat/3   (each type weighs the same)
  equal:    mean of mse_c over all 8 channels                      (each channel weighs the same)
Reported per-type losses are loss_T / channels(T), so 1.0 means "predicts the mean" for any type.

KL and beta. KL is in nats per sample, summed over latent dimensions. The objective is
  recon + beta * KL / (N * 8)
i.e. beta weighs KL per data element. With ``equal`` weighting and beta = 1 this is the negative
ELBO per element of a Gaussian decoder with variance 1/2 on z-scored data; smaller beta means a
sharper decoder. (The seed averaged KL over latent dims instead, which made beta depend on
latent_dim and collapse the expected outcome at beta = 1.)
"""

from __future__ import annotations

import torch

from gaussvae.render import TYPES


def channel_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, N, 8) x 2 -> (8,) mean squared error per channel."""
    return ((pred - target) ** 2).mean(dim=(0, 1))


def type_losses(per_channel: torch.Tensor,
                types: dict[str, slice] = TYPES) -> dict[str, torch.Tensor]:
    """Per-type mean of per-channel MSE (1.0 = predicting the mean), from (8,)."""
    return {name: per_channel[s].mean() for name, s in types.items()}


def reconstruction(per_channel: torch.Tensor, weighting: str,
                   types: dict[str, slice] = TYPES) -> torch.Tensor:
    """Scalar reconstruction loss from per-channel MSE (8,) under ``weighting``.

    ``types`` are the channel slices of the representation the model sees (encoding.py).
    """
    if weighting == "per_type":
        # loss_T = sum over T's channels; divided by T's channel count: the seed's formula.
        return sum(per_channel[s].sum() / (s.stop - s.start) for s in types.values())
    if weighting == "equal":
        return per_channel.mean()
    raise ValueError(f"loss_weighting must be 'per_type' or 'equal', got {weighting!r}")


def beta_at(epoch: int, max_beta: float, warmup_epochs: int) -> float:
    """Linear warm-up: 0 at epoch 0, max_beta from epoch ``warmup_epochs`` on (epochs 0-based)."""
    if warmup_epochs <= 0:
        return max_beta
    return max_beta * min(1.0, epoch / warmup_epochs)


def vae_loss(
    pred: torch.Tensor, target: torch.Tensor, kl: torch.Tensor, beta: float, weighting: str,
    types: dict[str, slice] = TYPES,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, recon, per-channel mse) for a batch; kl is (B,) nats."""
    per_channel = channel_mse(pred, target)
    recon = reconstruction(per_channel, weighting, types)
    elements = target.shape[1] * target.shape[2]
    total = recon + beta * kl.mean() / elements
    return total, recon, per_channel
