"""The pixel-space baseline's training job: the images themselves, under the same loop.

The images of the train and val splits, z-scored with training statistics, the Gaussian VAE's
objective rules (one type, so per-type weighting is the plain mean) and its symmetries.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gaussvae.baselines.pixel_vae import TYPES, PixelConfig, PixelStats, PixelVAE
from gaussvae.core.params import Params
from gaussvae.core.store import SPLITS, ImageSet
from gaussvae.vae.job import TrainingJob
from gaussvae.vae.loss import Objective
from gaussvae.vae.training_set import pixel_maps


@dataclass
class PixelTrainingSet:
    """Images (n, S*S, 3) in model units (z-scored pixels, row-major) under K symmetries."""

    pixels: torch.Tensor
    size: int
    symmetries: int

    def __post_init__(self) -> None:
        self.examples = len(self.pixels)
        self.maps = pixel_maps(self.size, self.symmetries, self.pixels.device)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, None]:
        base, k = idx // self.symmetries, idx % self.symmetries
        x = self.pixels[base]
        for sym in range(1, self.symmetries):
            rows = (k == sym).nonzero().flatten()
            if len(rows):
                x[rows] = x[rows][:, self.maps[sym]]
        return x, None


def pixel_training_params(params: Params) -> Params:
    """``params`` with the baseline's own KL weight as ``max_beta``, the key the trainer's
    warm-up and selection read (``pixel_baseline.max_beta``: pixel_vae.py says why it is its
    own)."""
    return params.model_copy(update={"max_beta": params.pixel_baseline.max_beta})


def pixel_job(params: Params, images: ImageSet, device: torch.device) -> TrainingJob:
    """The baseline's job on the train and val images of ``images``."""
    train_images = images.images[images.split == SPLITS.index("train")]
    val_images = images.images[images.split == SPLITS.index("val")]
    stats = PixelStats.of(train_images)
    size = images.images.shape[1]
    config = PixelConfig.from_params(params, size)
    x_train = stats.normalize(train_images).to(device)
    return TrainingJob(config, lambda: PixelVAE(config),
                       PixelTrainingSet(x_train, size, params.train.symmetries), x_train,
                       stats.normalize(val_images).to(device),
                       Objective(params.train.loss_weighting, TYPES, None),
                       stats.to_json(), "pixel_vae")
