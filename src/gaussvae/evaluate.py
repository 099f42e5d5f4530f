"""Stage 'evaluate': parameter-space and render-space quality of the trained VAE.

The code is evaluated as it would be stored (codes.py): the posterior mean in float16, the
latent's byte budget (latent_dim x 2 bytes), and 8-bit quantized (latent_dim bytes).
Parameter-space losses alone mislead (small parameter errors can be large pixel errors), so the
decoded Gaussians are rendered and compared with the original image and with the render of the
fitted Gaussians (the ceiling); WebP and JPEG within the same budgets are in
metrics/codecs.json (codecs stage), the pixel-space autoencoder in baselines/. Images decoded
from the prior are compared with the data by the statistics of samples.py.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from gaussvae.atomic import rounded
from gaussvae.codes import Uniform8Bit, as_fp16
from gaussvae.layout import TYPES
from gaussvae.model import VAE, active_units, reconstruct
from gaussvae.normalize import NormStats, denormalize, normalize
from gaussvae.params import EvaluateParams
from gaussvae.pixel_ae import PixelStats, PixelVAE
from gaussvae.pixels import image_scores, mean_psnr
from gaussvae.plots import image_grid, save_png, square_grid, type_loss_bars
from gaussvae.render import RenderSpec, render, to_valid
from gaussvae.samples import sample_statistics
from gaussvae.scores import parameter_scores
from gaussvae.store import SPLITS, GaussianSet, ImageSet, image_rows

# Axis ratio from which a Gaussian's orientation counts in ``rotation_error_deg``.
ELONGATED = 1.5
# Images decoded from the prior for the sample statistics (and prior_samples.png).
SAMPLES = 300


def render_uint8(g: torch.Tensor, spec: RenderSpec, batch: int = 64) -> np.ndarray:
    """Render stored-unit Gaussians (B, N, 8) to (B, S, S, 3) uint8."""
    outs = []
    with torch.no_grad():
        for i in range(0, len(g), batch):
            img = render(to_valid(g[i:i + batch], spec), spec.image_size, spec.window)
            outs.append((img.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).cpu().numpy())
    return np.concatenate(outs)


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
        out[name] = mean_psnr(render_uint8(mixed, spec), originals)
    return out


class GaussianEvaluation:
    """Everything evaluate needs about one trained model and its data, loaded once."""

    def __init__(self, model: VAE, stats: NormStats, gaussians: GaussianSet, images: ImageSet,
                 device: torch.device) -> None:
        self.model, self.stats, self.gaussians, self.images = model, stats, gaussians, images
        self.device = device
        self.spec = RenderSpec.from_attrs(gaussians.attrs)
        _, mu_train, _ = reconstruct(model, self.normalized("train"))
        self.quantizer = Uniform8Bit.fit(mu_train)

    def fitted(self, split: str) -> torch.Tensor:
        return torch.from_numpy(self.gaussians.gaussians[self.gaussians.select(split)]).to(
            self.device)

    def normalized(self, split: str) -> torch.Tensor:
        return normalize(self.fitted(split), self.stats)

    def originals(self, split: str) -> np.ndarray:
        return self.images.images[image_rows(self.images, self.gaussians,
                                              self.gaussians.select(split))]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Stored-unit Gaussians (n, N, 8) decoded from codes z (n, latent_dim)."""
        with torch.no_grad():
            return denormalize(self.model.decode(z), self.stats)

    def split_metrics(self, split: str, weighting: str) -> dict:
        """All metrics of one split (scalars only, nested by kind; DVC drops lists)."""
        fitted = self.fitted(split)
        pred, mu, kl = reconstruct(self.model, self.normalized(split), code=as_fp16)
        decoded = denormalize(pred, self.stats)  # stored units, whatever the model's encoding
        raw = self.stats.raw()  # losses in stored channels: comparable across encodings
        out = parameter_scores(normalize(decoded, raw), normalize(fitted, raw), mu, kl,
                               weighting, TYPES)
        out["rot_error_deg"] = rotation_error_deg(decoded, fitted)
        originals = self.originals(split)
        recon_px = render_uint8(decoded, self.spec)
        fit_px = render_uint8(fitted, self.spec)
        out["render"] = {**image_scores(recon_px, originals, "_vs_image"),
                         **image_scores(recon_px, fit_px, "_vs_fit")}
        pred8, _, _ = reconstruct(self.model, self.normalized(split), code=self.quantizer)
        out["render_8bit"] = image_scores(
            render_uint8(denormalize(pred8, self.stats), self.spec), originals, "_vs_image")
        out["fit"] = image_scores(fit_px, originals, "_vs_image")
        out["render_with_true"] = oracle_psnr(decoded, fitted, originals, self.spec)
        return out

    def prior_samples(self, count: int, seed: int) -> np.ndarray:
        """Images (count, S, S, 3) uint8 decoded from z ~ N(0, I), seeded."""
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(count, self.model.config.latent_dim, generator=gen).to(self.device)
        return render_uint8(self.decode(z), self.spec)

    def interpolations(self, pairs: int, steps: int) -> list[np.ndarray]:
        """Columns of decodes along the line between the codes of test images 2k and 2k + 1:
        ``steps`` columns, each (pairs, S, S, 3) uint8; the ends are the images' own codes."""
        x = self.normalized("test")[: 2 * pairs]
        _, mu, _ = reconstruct(self.model, x, code=as_fp16)
        a, b = as_fp16(mu[0::2]), as_fp16(mu[1::2])
        return [render_uint8(self.decode(a + (b - a) * t), self.spec)
                for t in np.linspace(0.0, 1.0, steps)]


def evaluate(evaluation: GaussianEvaluation, weighting: str, settings: EvaluateParams) -> dict:
    """metrics/eval.json: per split, and the prior samples' statistics against test images."""
    metrics = {split: evaluation.split_metrics(split, weighting) for split in ("test", "val")}
    metrics["samples"] = sample_statistics(
        evaluation.prior_samples(SAMPLES, settings.seed), evaluation.originals("test"),
        evaluation.originals("val"))
    return rounded(metrics, 5)


def write_pictures(evaluation: GaussianEvaluation, metrics: dict, settings: EvaluateParams,
                   folder: str | Path) -> None:
    """reconstructions.png (original | fit | VAE, first test images), prior_samples.png (decoded
    from z ~ N(0, I)), interpolation.png (decodes between pairs of test images' codes) and
    type_losses.png (per-type losses of val and test) in ``folder``."""
    folder = Path(folder)
    ev, n = evaluation, settings.grid_images
    _, mu, _ = reconstruct(ev.model, ev.normalized("test")[:n], code=as_fp16)
    columns = [ev.originals("test")[:n], render_uint8(ev.fitted("test")[:n], ev.spec),
               render_uint8(ev.decode(as_fp16(mu)), ev.spec)]
    save_png(image_grid(columns, ["original", "fit", "VAE"]), folder / "reconstructions.png")
    samples = ev.prior_samples(SAMPLES, settings.seed)[: settings.prior_samples]
    save_png(square_grid(samples), folder / "prior_samples.png")
    save_png(image_grid(ev.interpolations(4, 8)), folder / "interpolation.png")
    type_loss_bars({s: metrics[s]["loss"] for s in ("val", "test")}, folder / "type_losses.png")


class PixelEvaluation:
    """The pixel-space baseline scored like the Gaussian VAE: its code as stored (float16 and
    8-bit), render PSNR and SSIM against the images, prior samples' statistics."""

    def __init__(self, model: PixelVAE, stats: PixelStats, images: ImageSet,
                 device: torch.device) -> None:
        self.model, self.stats, self.images, self.device = model, stats, images, device
        self.size = images.images.shape[1]
        _, mu_train, _ = reconstruct(model, self.normalized("train"))
        self.quantizer = Uniform8Bit.fit(mu_train)

    def originals(self, split: str) -> np.ndarray:
        return self.images.images[self.images.split == SPLITS.index(split)]

    def normalized(self, split: str) -> torch.Tensor:
        return self.stats.normalize(self.originals(split)).to(self.device)

    def split_metrics(self, split: str) -> dict:
        originals = self.originals(split)
        pred, mu, kl = reconstruct(self.model, self.normalized(split), code=as_fp16)
        pred8, _, _ = reconstruct(self.model, self.normalized(split), code=self.quantizer)
        return {"render": image_scores(self.stats.to_uint8(pred, self.size), originals,
                                       "_vs_image"),
                "render_8bit": image_scores(self.stats.to_uint8(pred8, self.size), originals,
                                            "_vs_image"),
                "kl_nats": float(kl.mean()), "active_units": active_units(mu)}

    def prior_samples(self, count: int, seed: int) -> np.ndarray:
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(count, self.model.config.latent_dim, generator=gen).to(self.device)
        with torch.no_grad():
            return self.stats.to_uint8(self.model.decode(z), self.size)


def evaluate_pixel(evaluation: PixelEvaluation, settings: EvaluateParams) -> dict:
    """baselines/metrics/eval.json: per split, and the prior samples' statistics."""
    metrics = {split: evaluation.split_metrics(split) for split in ("test", "val")}
    metrics["samples"] = sample_statistics(evaluation.prior_samples(SAMPLES, settings.seed),
                                           evaluation.originals("test"),
                                           evaluation.originals("val"))
    return rounded(metrics, 5)


def write_pixel_pictures(evaluation: PixelEvaluation, settings: EvaluateParams,
                         folder: str | Path) -> None:
    """reconstructions.png (original | pixel autoencoder) and prior_samples.png."""
    folder, ev, n = Path(folder), evaluation, settings.grid_images
    pred, _, _ = reconstruct(ev.model, ev.normalized("test")[:n], code=as_fp16)
    save_png(image_grid([ev.originals("test")[:n], ev.stats.to_uint8(pred, ev.size)],
                        ["original", "pixel AE"]), folder / "reconstructions.png")
    samples = ev.prior_samples(SAMPLES, settings.seed)[: settings.prior_samples]
    save_png(square_grid(samples), folder / "prior_samples.png")
