"""The image sets the sample metric compares with the validation images: each model's prior
samples and its reconstructions of the test images, for the Gaussian VAE, the pixel VAE and
PCA (whose "prior" is a Gaussian with the training codes' variance per component)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gaussvae.baselines.pca import PCACode
from gaussvae.baselines.pixel_eval import PixelEvaluation
from gaussvae.baselines.pixel_vae import load_pixel_model
from gaussvae.core.store import SPLITS, GaussianSet, ImageSet
from gaussvae.evaluation.code_storage import as_fp16
from gaussvae.evaluation.gaussian_eval import GaussianEvaluation
from gaussvae.evaluation.sample_statistics import SAMPLES
from gaussvae.vae.model_file import load_model


def split_images(images: ImageSet, split: str) -> np.ndarray:
    return images.images[images.split == SPLITS.index(split)]


def pca_sets(images: ImageSet, k: int, count: int, seed: int) -> dict[str, np.ndarray]:
    """PCA's reconstructions of the test images (float16 code, as stored) and ``count``
    images decoded from codes drawn from N(0, the training codes' variance)."""
    train, test = split_images(images, "train"), split_images(images, "test")
    code = PCACode.fit(train, k)
    shape = images.images.shape[1:]
    std = code.encode(train).std(dim=0)
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(count, k, generator=gen) * std
    return {"pca_reconstructions": code.decode(as_fp16(code.encode(test)), shape),
            "pca_samples": code.decode(z, shape)}


def decoded_sets(images: ImageSet, gaussians: GaussianSet, vae_path: str | Path,
                 pixel_path: str | Path, seed: int, device: torch.device
                 ) -> dict[str, np.ndarray]:
    """Every model's SAMPLES prior samples (seeded as the evaluate stages seed theirs) and its
    reconstructions of the test images, uint8 (n, S, S, 3), by name."""
    model, stats, _ = load_model(vae_path, device)
    gaussian = GaussianEvaluation(model, stats, gaussians, images, device)
    pixel_model, pixel_stats = load_pixel_model(pixel_path, device)
    pixel = PixelEvaluation(pixel_model, pixel_stats, images, device)
    return {"gaussian_vae_samples": gaussian.prior_samples(SAMPLES, seed),
            "gaussian_vae_reconstructions": gaussian.run_split("test").recon_px,
            "pixel_vae_samples": pixel.prior_samples(SAMPLES, seed),
            "pixel_vae_reconstructions": pixel.run_split("test").recon_px,
            **pca_sets(images, model.config.latent_dim, SAMPLES, seed)}
