"""What the training loop trains: a job is a model, its data in model units and its objective.

The Gaussian VAE (here) and the pixel-space baseline (baselines/pixel_job.py) are two jobs of
the same loop (trainer.py), so they share its budget, schedule, selection rules and checkpoints
by construction; only what a job holds differs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from gaussvae.core.errors import StaleFileError
from gaussvae.core.params import Params
from gaussvae.core.store import GaussianSet, ImageSet, image_rows
from gaussvae.gaussians.render import RenderSpec
from gaussvae.vae.loss import Objective, RenderTerm
from gaussvae.vae.model import VAE, VAEConfig, build_model
from gaussvae.vae.normalization import NormStats, normalize
from gaussvae.vae.training_set import GaussianTrainingSet


class TrainingSet(Protocol):
    """Batches in model units (training_set.py): inputs (B, N, C) and render targets or None,
    of samples example * symmetries + k (example under symmetry k)."""

    examples: int
    symmetries: int

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]: ...


@dataclass
class TrainingJob:
    """What the loop trains: a model, its data in model units and its objective, and what its
    file keeps beside the weights (config and normalization statistics), so that the Gaussian
    VAE and the pixel-space baseline train under the very same loop, budget and rules."""

    config: Any  # the model's config (to_dict()): VAEConfig, or the baseline's
    build: Callable[[], VAE]
    train_set: TrainingSet
    x_train: torch.Tensor  # (n, N, C) model units, unaugmented: the train scores in train.json
    x_val: torch.Tensor
    objective: Objective
    saved_stats: dict  # normalization statistics (JSON) saved with the model
    kind: str  # the kind of model its file holds (model_file.KINDS)


def make_objective(params: Params, data: GaussianSet, stats: NormStats) -> Objective:
    """The training objective params.yaml describes, for data normalized with ``stats``."""
    t = params.train
    render = None
    if t.render_loss_weight > 0:
        render = RenderTerm(t.render_loss_weight, RenderSpec.from_attrs(data.attrs), stats)
    return Objective(t.loss_weighting, stats.types, render)


def gaussian_job(params: Params, data: GaussianSet, stats: NormStats,
                 orders: np.ndarray | None, images: ImageSet | None,
                 device: torch.device) -> TrainingJob:
    """The Gaussian VAE's job. ``orders`` (n_train, K, N): orders under the first K of the
    square's symmetries (symmetries stage), needed when train.symmetries > 1; ``images``: the
    image set, needed when the render term's target is the image (train.render_target: image).
    """
    t = params.train
    fits = torch.from_numpy(data.gaussians[data.select("train")]).to(device)
    objective = make_objective(params, data, stats)
    targets = None
    if objective.render is not None:
        if t.render_target == "image":
            rows = image_rows(images, data, data.select("train"))
            targets = torch.from_numpy(images.images[rows]).to(device).float() / 255.0
        else:
            targets = objective.render.targets(fits)
    if orders is None and t.symmetries > 1:
        raise StaleFileError(f"train.symmetries {t.symmetries} needs the symmetries stage's "
                             "orders (stages/train.py --symmetries data/symmetries.npy)")
    if orders is None:
        orders = np.arange(fits.shape[1])[None, None]
    if (orders.shape[0] not in (1, len(fits)) or orders.shape[1] < t.symmetries
            or orders.shape[2] != fits.shape[1]):
        raise StaleFileError(f"symmetry orders of shape {orders.shape} do not fit the "
                             f"{len(fits)} training fits; re-run the symmetries stage")
    # One table (anchored ordering) holds for every fit: a view, not n copies.
    table = torch.from_numpy(orders[:, :t.symmetries].astype(np.int64)).to(device)
    train_set = GaussianTrainingSet(fits, stats, table.expand(len(fits), -1, -1), targets)
    config = VAEConfig.from_params(params, fits.shape[1])
    x_val = torch.from_numpy(data.gaussians[data.select("val")]).to(device)
    return TrainingJob(config, lambda: build_model(config, stats), train_set,
                       normalize(fits, stats), normalize(x_val, stats), objective,
                       stats.to_json(), "gaussian_vae")
