"""The pixel-space baseline scored as the Gaussian VAE is (evaluation/gaussian_eval.py): its
code as stored (float16 and 8-bit), render PSNR and SSIM against the images, and the prior
samples' statistics; each split encoded, decoded and turned into images once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gaussvae.baselines.pixel_vae import PixelStats, PixelVAE
from gaussvae.core.atomic import rounded
from gaussvae.core.params import EvaluateParams
from gaussvae.core.store import SPLITS, ImageSet
from gaussvae.evaluation.code_storage import Uniform8Bit, as_fp16
from gaussvae.evaluation.image_metrics import image_scores
from gaussvae.evaluation.per_image import split_sources
from gaussvae.evaluation.pictures import image_grid, save_png, square_grid
from gaussvae.evaluation.sample_statistics import SAMPLES, sample_statistics
from gaussvae.vae.model import active_units, decode_codes, encode_means


@dataclass(frozen=True)
class PixelPass:
    sources: list[str]  # the images' sources (images.h5)
    originals: np.ndarray  # (n, S, S, 3) uint8
    mu: torch.Tensor  # (n, latent_dim)
    kl: torch.Tensor  # (n,) nats
    recon_px: np.ndarray  # decoded from the float16 code, uint8
    recon8_px: np.ndarray  # decoded from the 8-bit code


class PixelEvaluation:
    def __init__(self, model: PixelVAE, stats: PixelStats, images: ImageSet,
                 device: torch.device) -> None:
        self.model, self.stats, self.images, self.device = model, stats, images, device
        self.size = images.images.shape[1]
        mu_train, _ = encode_means(model, self._normalized(self._originals("train")))
        self.quantizer = Uniform8Bit.fit(mu_train)

    def _originals(self, split: str) -> np.ndarray:
        return self.images.images[self.images.split == SPLITS.index(split)]

    def _normalized(self, originals: np.ndarray) -> torch.Tensor:
        return self.stats.normalize(originals).to(self.device)

    def _images(self, z: torch.Tensor) -> np.ndarray:
        return self.stats.to_uint8(decode_codes(self.model, z), self.size)

    def run_split(self, split: str) -> PixelPass:
        originals = self._originals(split)
        mu, kl = encode_means(self.model, self._normalized(originals))
        return PixelPass(split_sources(self.images, split), originals, mu, kl,
                         self._images(as_fp16(mu)), self._images(self.quantizer(mu)))

    def prior_samples(self, count: int, seed: int) -> np.ndarray:
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(count, self.model.config.latent_dim, generator=gen).to(self.device)
        with torch.no_grad():
            return self.stats.to_uint8(self.model.decode(z), self.size)


def split_metrics(run: PixelPass) -> dict:
    return {"render": image_scores(run.recon_px, run.originals, "_vs_image"),
            "render_8bit": image_scores(run.recon8_px, run.originals, "_vs_image"),
            "kl_nats": float(run.kl.mean()), "active_units": active_units(run.mu)}


def evaluate_pixel(evaluation: PixelEvaluation, settings: EvaluateParams, folder: str | Path
                   ) -> tuple[dict, dict[str, PixelPass]]:
    """baselines/metrics/eval.json (per split, and the prior samples' statistics) and the
    passes it was computed from (test, val); the pictures in ``folder``: reconstructions.png
    (original | pixel autoencoder) and prior_samples.png."""
    runs = {split: evaluation.run_split(split) for split in ("test", "val")}
    metrics: dict = {split: split_metrics(run) for split, run in runs.items()}
    samples = evaluation.prior_samples(SAMPLES, settings.seed)
    metrics["samples"] = sample_statistics(samples, runs["test"].originals,
                                           runs["val"].originals)
    folder, test, n = Path(folder), runs["test"], settings.grid_images
    save_png(image_grid([test.originals[:n], test.recon_px[:n]], ["original", "pixel AE"]),
             folder / "reconstructions.png")
    save_png(square_grid(samples[: settings.prior_samples]), folder / "prior_samples.png")
    return rounded(metrics, 5), runs
