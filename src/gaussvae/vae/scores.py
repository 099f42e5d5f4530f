"""Parameter-space scores of a reconstruction: one function for every split and every caller.

Training's validation (in the model's own channels) and the evaluate stage (in stored channels)
both report, with z = mu: per-type losses (1.0 = predicting the training mean), the weighted
total, KL in nats per sample, active latent units, and per type the std of the predictions over
the std of the targets (a collapsed prediction shows as << 1).
"""

from __future__ import annotations

import torch

from gaussvae.vae.loss import channel_mse, reconstruction, type_losses
from gaussvae.vae.model import VAE, active_units, reconstruct


def parameter_scores(pred: torch.Tensor, target: torch.Tensor, mu: torch.Tensor,
                     kl: torch.Tensor, weighting: str, types: dict[str, slice]) -> dict:
    """Scores of predictions against targets (n, N, 8), both normalized with the same stats;
    mu (n, latent_dim) and kl (n,) of the posteriors that made them."""
    per_channel = channel_mse(pred, target)
    losses = {k: float(v) for k, v in type_losses(per_channel, types).items()}
    losses["total"] = float(reconstruction(per_channel, weighting, types))
    std_ratio = {}
    for name, s in types.items():
        target_std = target[..., s].std()
        std_ratio[name] = float(pred[..., s].std() / target_std) if target_std > 0 else 0.0
    return {"loss": losses, "kl_nats": float(kl.mean()), "active_units": active_units(mu),
            "std_ratio": std_ratio}


def split_scores(model: VAE, x: torch.Tensor, weighting: str,
                 types: dict[str, slice]) -> dict:
    """``parameter_scores`` of the model's reconstruction of x (n, N, 8) in model units."""
    model.eval()
    pred, mu, kl = reconstruct(model, x)
    return parameter_scores(pred, x, mu, kl, weighting, types)
