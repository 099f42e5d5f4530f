"""Parameter-space and render-space quality of a trained Gaussian VAE (the evaluate stage).

The code is evaluated as it would be stored (code_storage.py): the posterior mean in float16,
the latent's byte budget (latent_dim x 2 bytes), and 8-bit quantized (latent_dim bytes); and,
for the rate-distortion curves, at 2 to 8 bits a dimension (``rate_distortion``).
Parameter-space losses alone mislead (small parameter errors can be large pixel errors), so the
decoded Gaussians are rendered and compared with the original image and with the render of the
fitted Gaussians (the ceiling); WebP and JPEG within the same budgets are the codecs stage's,
the pixel-space autoencoder is in baselines/. Images decoded from the prior are compared with
the data by the statistics of sample_statistics.py.

Each split is encoded, decoded and rendered once (``SplitPass``); its metrics and the pictures
both read that pass, and the prior samples are decoded and rendered once for both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gaussvae.core.atomic import rounded
from gaussvae.core.channels import ANGLE, INDEX, TYPES
from gaussvae.core.params import EvaluateParams
from gaussvae.core.store import GaussianSet, ImageSet, image_rows
from gaussvae.evaluation.code_storage import Uniform8Bit, as_fp16, code_points
from gaussvae.evaluation.image_metrics import image_scores, mean_psnr
from gaussvae.evaluation.pictures import image_grid, save_png, square_grid, type_loss_bars
from gaussvae.evaluation.sample_statistics import SAMPLES, sample_statistics
from gaussvae.gaussians.render import RenderSpec, render_uint8
from gaussvae.vae.model import VAE, decode_codes, encode_means
from gaussvae.vae.normalization import NormStats, denormalize, normalize
from gaussvae.vae.scores import parameter_scores

# Axis ratio from which a Gaussian's orientation counts in ``rotation_error_deg``.
ELONGATED = 1.5
# Pairs of test images and steps between them in interpolation.png.
INTERPOLATION_PAIRS, INTERPOLATION_STEPS = 4, 8


def rotation_error_deg(decoded: torch.Tensor, fitted: torch.Tensor,
                       min_elongation: float = ELONGATED) -> float:
    """Mean absolute angle (degrees, modulo 180) between decoded and fitted axes, over fitted
    Gaussians at least ``min_elongation`` times longer than wide.

    The rot loss is an MSE on a number that wraps at pi and is meaningless for round Gaussians;
    this is the orientation error where orientation exists. Guessing a constant angle scores 45.
    """
    long_side, short_side = fitted[..., INDEX["scale_x"]], fitted[..., INDEX["scale_y"]]
    elongated = long_side >= min_elongation * short_side
    if not bool(elongated.any()):
        return 0.0
    diff = torch.remainder(decoded[..., ANGLE] - fitted[..., ANGLE] + math.pi / 2,
                           math.pi) - math.pi / 2
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


@dataclass(frozen=True)
class SplitPass:
    """One split encoded, decoded from its stored codes and rendered, once."""

    sources: list[str]  # the images' sources (images.h5), in the order of every array here
    originals: np.ndarray  # (n, S, S, 3) uint8, the images
    fitted: torch.Tensor  # (n, N, 8) the fits, stored units
    decoded: torch.Tensor  # (n, N, 8) decoded from the float16 code, stored units
    mu: torch.Tensor  # (n, latent_dim) float32 posterior means
    kl: torch.Tensor  # (n,) nats
    fit_px: np.ndarray  # renders of the fits, (n, S, S, 3) uint8
    recon_px: np.ndarray  # renders of ``decoded``
    recon8_px: np.ndarray  # renders of the Gaussians decoded from the 8-bit code


class GaussianEvaluation:
    """A trained model and its data, loaded once; the 8-bit quantizer fitted on the training
    images' codes (its range is part of the decoder, like its weights)."""

    def __init__(self, model: VAE, stats: NormStats, gaussians: GaussianSet, images: ImageSet,
                 device: torch.device) -> None:
        self.model, self.stats, self.gaussians, self.images = model, stats, gaussians, images
        self.device = device
        self.spec = RenderSpec.from_attrs(gaussians.attrs)
        self.mu_train, _ = encode_means(model, self._normalized(self._fitted("train")))
        self.quantizer = Uniform8Bit.fit(self.mu_train)

    def _fitted(self, split: str) -> torch.Tensor:
        rows = self.gaussians.select(split)
        return torch.from_numpy(self.gaussians.gaussians[rows]).to(self.device)

    def _normalized(self, fitted: torch.Tensor) -> torch.Tensor:
        return normalize(fitted, self.stats)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Stored-unit Gaussians (n, N, 8) decoded from codes z (n, latent_dim)."""
        return denormalize(decode_codes(self.model, z), self.stats)

    def run_split(self, split: str) -> SplitPass:
        fitted = self._fitted(split)
        mu, kl = encode_means(self.model, self._normalized(fitted))
        decoded = self.decode(as_fp16(mu))  # stored units, whatever the model's encoding
        rows = image_rows(self.images, self.gaussians, self.gaussians.select(split))
        return SplitPass([self.images.sources[r] for r in rows], self.images.images[rows],
                         fitted, decoded, mu, kl,
                         render_uint8(fitted, self.spec), render_uint8(decoded, self.spec),
                         render_uint8(self.decode(self.quantizer(mu)), self.spec))

    def split_metrics(self, run: SplitPass, weighting: str) -> dict:
        """All metrics of one split (scalars only, nested by kind; DVC drops lists)."""
        raw = self.stats.raw()  # losses in stored channels: comparable across encodings
        out = parameter_scores(normalize(run.decoded, raw), normalize(run.fitted, raw), run.mu,
                               run.kl, weighting, TYPES)
        out["rot_error_deg"] = rotation_error_deg(run.decoded, run.fitted)
        out["render"] = {**image_scores(run.recon_px, run.originals, "_vs_image"),
                         **image_scores(run.recon_px, run.fit_px, "_vs_fit")}
        out["render_8bit"] = image_scores(run.recon8_px, run.originals, "_vs_image")
        out["fit"] = image_scores(run.fit_px, run.originals, "_vs_image")
        out["render_with_true"] = oracle_psnr(run.decoded, run.fitted, run.originals, self.spec)
        out["rate_distortion"] = code_points(
            self.mu_train, run.mu, lambda z: render_uint8(self.decode(z), self.spec),
            run.originals)
        return out

    def prior_samples(self, count: int, seed: int) -> np.ndarray:
        """Images (count, S, S, 3) uint8 decoded from z ~ N(0, I), seeded."""
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(count, self.model.config.latent_dim, generator=gen).to(self.device)
        with torch.no_grad():
            return render_uint8(denormalize(self.model.decode(z), self.stats), self.spec)

    def interpolations(self, mu: torch.Tensor, pairs: int, steps: int) -> list[np.ndarray]:
        """Columns of decodes along the line between the codes (as stored) of images 2k and
        2k + 1 of ``mu``: ``steps`` columns of (pairs, S, S, 3) uint8; the ends are the images'
        own codes."""
        a, b = as_fp16(mu[0:2 * pairs:2]), as_fp16(mu[1:2 * pairs:2])
        return [render_uint8(self.decode(a + (b - a) * t), self.spec)
                for t in np.linspace(0.0, 1.0, steps)]


@dataclass(frozen=True)
class Evaluation:
    """What the evaluate stage computed: the metrics, and what the pictures are drawn from."""

    metrics: dict  # metrics/eval.json
    runs: dict[str, SplitPass]  # test and val
    samples: np.ndarray  # images decoded from the prior, (SAMPLES, S, S, 3) uint8

    @property
    def test(self) -> SplitPass:
        return self.runs["test"]


def evaluate(evaluation: GaussianEvaluation, weighting: str, settings: EvaluateParams
             ) -> Evaluation:
    """metrics/eval.json: per split, and the prior samples' statistics against test images."""
    runs = {split: evaluation.run_split(split) for split in ("test", "val")}
    metrics: dict = {split: evaluation.split_metrics(run, weighting)
                     for split, run in runs.items()}
    samples = evaluation.prior_samples(SAMPLES, settings.seed)
    metrics["samples"] = sample_statistics(samples, runs["test"].originals,
                                           runs["val"].originals)
    return Evaluation(rounded(metrics, 5), runs, samples)


def write_pictures(evaluation: GaussianEvaluation, result: Evaluation,
                   settings: EvaluateParams, folder: str | Path) -> None:
    """reconstructions.png (original | fit | VAE, first test images), prior_samples.png (decoded
    from z ~ N(0, I)), interpolation.png (decodes between pairs of test images' codes) and
    type_losses.png (per-type losses of val and test) in ``folder``."""
    folder, test, n = Path(folder), result.test, settings.grid_images
    columns = [test.originals[:n], test.fit_px[:n], test.recon_px[:n]]
    save_png(image_grid(columns, ["original", "fit", "VAE"]), folder / "reconstructions.png")
    save_png(square_grid(result.samples[: settings.prior_samples]), folder / "prior_samples.png")
    save_png(image_grid(evaluation.interpolations(test.mu, INTERPOLATION_PAIRS,
                                                  INTERPOLATION_STEPS)),
             folder / "interpolation.png")
    type_loss_bars({s: result.metrics[s]["loss"] for s in ("val", "test")},
                   folder / "type_losses.png")
