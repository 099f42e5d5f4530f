"""Stage 'evaluate': parameter-space and render-space quality of the trained VAE, z = mu.

Parameter-space losses alone mislead (DESIGN.md 4: losses of 0.05 rendered at 16 dB), so the
decoded Gaussians are rendered and compared with the original image and with the render of the
fitted Gaussians (the ceiling), next to WebP and JPEG at the latent's byte budget.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from skimage.metrics import structural_similarity

from gaussvae.codecs import at_budget, psnr_uint8
from gaussvae.loss import channel_mse, reconstruction, type_losses
from gaussvae.model import VAE
from gaussvae.normalize import NormStats, denormalize, normalize
from gaussvae.render import TYPES, RenderSpec, render, to_valid
from gaussvae.store import GaussianSet, ImageSet
from gaussvae.train import ACTIVE_VARIANCE, reconstruct

# Bytes per latent value when the code is stored as float16.
LATENT_BYTES_PER_DIM = 2
# Axis ratio from which a Gaussian's orientation counts in ``rotation_error_deg``.
ELONGATED = 1.5


def render_uint8(g: torch.Tensor, spec: RenderSpec, batch: int = 64) -> np.ndarray:
    """Render stored-unit Gaussians (B, N, 8) to (B, S, S, 3) uint8."""
    outs = []
    with torch.no_grad():
        for i in range(0, len(g), batch):
            img = render(to_valid(g[i:i + batch], spec), spec.image_size, spec.window)
            outs.append((img.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).cpu().numpy())
    return np.concatenate(outs)


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    return float(structural_similarity(a, b, channel_axis=-1, data_range=255))


def _image_scores(pred: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """Mean PSNR (dB) and SSIM over a set of uint8 images."""
    psnrs = [psnr_uint8(p, r) for p, r in zip(pred, ref, strict=True)]
    ssims = [_ssim(p, r) for p, r in zip(pred, ref, strict=True)]
    return float(np.mean(psnrs)), float(np.mean(ssims))


def parameter_metrics(pred: torch.Tensor, target: torch.Tensor, mu: torch.Tensor,
                      kl: torch.Tensor, weighting: str) -> dict:
    """Per-type losses, weighted total, KL, active units and std ratios (normalized units)."""
    per_channel = channel_mse(pred, target)
    losses = {k: float(v) for k, v in type_losses(per_channel).items()}
    losses["total"] = float(reconstruction(per_channel, weighting))
    std_ratio = {}
    for name, s in TYPES.items():
        t_std = target[..., s].std()
        std_ratio[name] = float(pred[..., s].std() / t_std) if t_std > 0 else 0.0
    var = mu.var(dim=0) if len(mu) > 1 else torch.zeros(mu.shape[1])
    return {"loss": losses, "kl_nats": float(kl.mean()),
            "active_units": int((var > ACTIVE_VARIANCE).sum()), "std_ratio": std_ratio}


def rotation_error_deg(decoded: torch.Tensor, fitted: torch.Tensor,
                       min_elongation: float = ELONGATED) -> float:
    """Mean absolute angle (degrees, modulo 180) between decoded and fitted axes, over fitted
    Gaussians at least ``min_elongation`` times longer than wide.

    The rot loss is an MSE on a number that wraps at pi and is meaningless for round Gaussians;
    this is the orientation error where orientation exists. Guessing a constant angle scores 45.
    """
    elongated = fitted[..., 2] >= min_elongation * fitted[..., 3]
    if not bool(elongated.any()):
        return 0.0
    diff = torch.remainder(decoded[..., 4] - fitted[..., 4] + math.pi / 2, math.pi) - math.pi / 2
    return float(diff[elongated].abs().mean() * 180.0 / math.pi)


def oracle_psnr(decoded: torch.Tensor, fitted: torch.Tensor, originals: np.ndarray,
                spec: RenderSpec) -> dict[str, float]:
    """Render PSNR (dB, vs the original) when one type is taken from the fit instead of the VAE.

    Says which type's errors cost the most pixels: the larger the gain over the plain
    reconstruction, the more that type limits the render.
    """
    out = {}
    for name, s in TYPES.items():
        mixed = decoded.clone()
        mixed[..., s] = fitted[..., s]
        out[name] = _image_scores(render_uint8(mixed, spec), originals)[0]
    return out


def codec_metrics(images: np.ndarray, budget: int) -> dict:
    """Mean PSNR/SSIM and bytes of WebP and JPEG at the quality closest to ``budget`` bytes."""
    out: dict = {"latent_bytes": budget}
    for fmt in ("WEBP", "JPEG"):
        results = [at_budget(img, fmt, budget) for img in images]
        decoded = np.stack([r[2] for r in results])
        psnr_mean, ssim_mean = _image_scores(decoded, images)
        out[fmt.lower()] = {"psnr": psnr_mean, "ssim": ssim_mean,
                            "bytes": float(np.mean([r[1] for r in results])),
                            "quality": float(np.mean([r[0] for r in results]))}
    return out


def evaluate_split(model: VAE, gaussians: GaussianSet, images: ImageSet,
                   stats: NormStats, split: str, weighting: str, device: torch.device) -> dict:
    """All metrics of one split (scalars only, nested by kind)."""
    idx = gaussians.select(split)
    spec = RenderSpec.from_attrs(gaussians.attrs)
    fitted = torch.from_numpy(gaussians.gaussians[idx]).to(device)
    pred, mu, kl = reconstruct(model, normalize(fitted, stats))
    decoded = denormalize(pred, stats)  # stored units, whatever the model's encoding
    raw = stats.raw()  # losses in stored channels: comparable across encodings
    out = parameter_metrics(normalize(decoded, raw), normalize(fitted, raw), mu, kl, weighting)
    out["rot_error_deg"] = rotation_error_deg(decoded, fitted)

    originals = images.images[_image_rows(images, gaussians, idx)]
    recon_px = render_uint8(decoded, spec)
    fit_px = render_uint8(fitted, spec)
    rp, rs = _image_scores(recon_px, originals)
    fp, fs = _image_scores(recon_px, fit_px)
    op, os_ = _image_scores(fit_px, originals)
    out["render"] = {"psnr_vs_image": rp, "ssim_vs_image": rs,
                     "psnr_vs_fit": fp, "ssim_vs_fit": fs}
    out["fit"] = {"psnr_vs_image": op, "ssim_vs_image": os_}
    out["render_with_true"] = oracle_psnr(decoded, fitted, originals, spec)
    out["codec"] = codec_metrics(originals, model.cfg.latent_dim * LATENT_BYTES_PER_DIM)
    return _rounded(out)


def _image_rows(images: ImageSet, gaussians: GaussianSet, idx: np.ndarray) -> np.ndarray:
    """Rows of images.h5 holding the images of gaussians.h5 rows ``idx`` (matched by source)."""
    where = {s: i for i, s in enumerate(images.sources)}
    try:
        return np.asarray([where[gaussians.sources[i]] for i in idx])
    except KeyError as err:
        raise ValueError(f"image {err} of gaussians.h5 is not in images.h5; re-run extract")\
            from err


def _rounded(d: dict) -> dict:
    return {k: _rounded(v) if isinstance(v, dict) else
            (round(v, 5) if isinstance(v, float) else v) for k, v in d.items()}
