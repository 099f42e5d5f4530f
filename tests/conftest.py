"""Shared fixtures: tiny, seeded versions of the real params and data."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from gaussvae.core.params import Params, parse_params
from gaussvae.core.store import ImageSet
from gaussvae.images.prepare import prepare_images

REPO = Path(__file__).resolve().parents[1]


def tiny_raw_params() -> dict[str, Any]:
    """The repository's params.yaml, shrunk so a whole pipeline runs in seconds."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["prepare"].update(num_images=40, image_size=32, val_images=6, test_images=6)
    raw["extract"].update(num_gaussians=64, steps=15, batch_size=8)
    raw["train"].update(epochs=2, beta_warmup_epochs=1, batch_size=8, symmetries=1,
                        encoder_filters=[8, 16], decoder_filters=[16, 8],
                        bottleneck_channels=4)
    raw["latent_dim"] = 16
    raw["evaluate"].update(grid_images=3, prior_samples=4)
    return raw


def make_params(**overrides: Any) -> Params:
    """Tiny params with dotted overrides, e.g. make_params(**{"train.epochs": 3})."""
    raw = copy.deepcopy(tiny_raw_params())
    for key, value in overrides.items():
        *path, last = key.split(".")
        node = raw
        for part in path:
            node = node[part]
        node[last] = value
    return parse_params(raw)


@pytest.fixture(scope="session")
def tiny_images() -> ImageSet:
    return prepare_images(make_params().prepare)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory, tiny_images):
    """Tiny fitted Gaussians and their stats: (folder with g.h5 and stats.json, set, stats).
    Per test module, so a test that edits the set cannot leak into another module."""
    import torch

    from gaussvae.core.atomic import write_json
    from gaussvae.core.store import read_gaussians, write_gaussians
    from gaussvae.gaussians.extraction import extract
    from gaussvae.vae.normalization import compute_stats

    cfg = make_params(**{"extract.steps": 4}).extract
    data = extract(tiny_images, cfg, torch.device("cpu"))
    folder = tmp_path_factory.mktemp("data")
    write_gaussians(folder / "g.h5", data)
    stats = compute_stats(data.gaussians[data.select("train")], 1e-6)
    write_json(folder / "stats.json", stats.to_json())
    return folder, read_gaussians(folder / "g.h5"), stats
