"""Stage 'evaluate': parameter-space and render-space quality of the trained VAE, z = mu.

Parameter-space losses alone mislead (small parameter errors can be large pixel errors), so the
decoded Gaussians are rendered and compared with the original image and with the render of the
fitted Gaussians (the ceiling), next to WebP and JPEG at the latent's byte budget.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from skimage.metrics import structural_similarity

from gaussvae.atomic import rounded
from gaussvae.codecs import at_budget, psnr_uint8
from gaussvae.errors import StaleFileError
from gaussvae.layout import TYPES
from gaussvae.model import VAE, reconstruct
from gaussvae.normalize import NormStats, denormalize, normalize
from gaussvae.params import EvaluateParams
from gaussvae.plots import image_grid, save_png, square_grid, type_loss_bars
from gaussvae.render import RenderSpec, render, to_valid
from gaussvae.scores import parameter_scores
from gaussvae.store import GaussianSet, ImageSet

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


def _mean_psnr(pred: np.ndarray, ref: np.ndarray) -> float:
    """Mean PSNR (dB) over a set of uint8 images."""
    return float(np.mean([psnr_uint8(p, r) for p, r in zip(pred, ref, strict=True)]))


def _image_scores(pred: np.ndarray, ref: np.ndarray, suffix: str = "") -> dict[str, float]:
    """Mean PSNR (dB) and SSIM over a set of uint8 images, keyed psnr<suffix>, ssim<suffix>."""
    ssims = [_ssim(p, r) for p, r in zip(pred, ref, strict=True)]
    return {f"psnr{suffix}": _mean_psnr(pred, ref), f"ssim{suffix}": float(np.mean(ssims))}


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
        out[name] = _mean_psnr(render_uint8(mixed, spec), originals)
    return out


def codec_metrics(images: np.ndarray, budget: int) -> dict:
    """Mean PSNR/SSIM and bytes of WebP and JPEG at the quality closest to ``budget`` bytes."""
    out: dict = {"latent_bytes": budget}
    for fmt in ("WEBP", "JPEG"):
        results = [at_budget(img, fmt, budget) for img in images]
        decoded = np.stack([r[2] for r in results])
        out[fmt.lower()] = {**_image_scores(decoded, images),
                            "bytes": float(np.mean([r[1] for r in results])),
                            "quality": float(np.mean([r[0] for r in results]))}
    return out


def evaluate_split(model: VAE, gaussians: GaussianSet, images: ImageSet,
                   stats: NormStats, split: str, weighting: str, device: torch.device) -> dict:
    """All metrics of one split (scalars only, nested by kind; DVC drops lists)."""
    idx = gaussians.select(split)
    spec = RenderSpec.from_attrs(gaussians.attrs)
    fitted = torch.from_numpy(gaussians.gaussians[idx]).to(device)
    pred, mu, kl = reconstruct(model, normalize(fitted, stats))
    decoded = denormalize(pred, stats)  # stored units, whatever the model's encoding
    raw = stats.raw()  # losses in stored channels: comparable across encodings
    out = parameter_scores(normalize(decoded, raw), normalize(fitted, raw), mu, kl, weighting,
                           TYPES)
    out["rot_error_deg"] = rotation_error_deg(decoded, fitted)

    originals = images.images[_image_rows(images, gaussians, idx)]
    recon_px = render_uint8(decoded, spec)
    fit_px = render_uint8(fitted, spec)
    out["render"] = {**_image_scores(recon_px, originals, "_vs_image"),
                     **_image_scores(recon_px, fit_px, "_vs_fit")}
    out["fit"] = _image_scores(fit_px, originals, "_vs_image")
    out["render_with_true"] = oracle_psnr(decoded, fitted, originals, spec)
    out["codec"] = codec_metrics(originals, model.config.latent_dim * LATENT_BYTES_PER_DIM)
    return rounded(out, 5)


def _image_rows(images: ImageSet, gaussians: GaussianSet, idx: np.ndarray) -> np.ndarray:
    """Rows of images.h5 holding the images of gaussians.h5 rows ``idx`` (matched by source)."""
    where = {s: i for i, s in enumerate(images.sources)}
    try:
        return np.asarray([where[gaussians.sources[i]] for i in idx])
    except KeyError as err:
        raise StaleFileError(f"image {err} of gaussians.h5 is not in images.h5; re-run extract "
                             "(dvc repro extract)") from err


def write_pictures(model: VAE, stats: NormStats, gaussians: GaussianSet, images: ImageSet,
                   metrics: dict, settings: EvaluateParams, folder: str | Path,
                   device: torch.device) -> None:
    """reconstructions.png (original | fit | VAE, first test images), prior_samples.png (decoded
    from z ~ N(0, I)) and type_losses.png (per-type losses of val and test) in ``folder``."""
    folder = Path(folder)
    spec = RenderSpec.from_attrs(gaussians.attrs)
    idx = gaussians.select("test")[: settings.grid_images]
    fitted = torch.from_numpy(gaussians.gaussians[idx]).to(device)
    pred, _, _ = reconstruct(model, normalize(fitted, stats))
    columns = [images.images[_image_rows(images, gaussians, idx)], render_uint8(fitted, spec),
               render_uint8(denormalize(pred, stats), spec)]
    save_png(image_grid(columns, ["original", "fit", "VAE (z=mu)"]),
             folder / "reconstructions.png")
    gen = torch.Generator().manual_seed(settings.seed)
    z = torch.randn(settings.prior_samples, model.config.latent_dim, generator=gen).to(device)
    with torch.no_grad():
        samples = denormalize(model.decode(z), stats)
    save_png(square_grid(render_uint8(samples, spec)), folder / "prior_samples.png")
    type_loss_bars({s: metrics[s]["loss"] for s in ("val", "test")}, folder / "type_losses.png")
