"""The pixel-space baseline's own knobs: residual blocks at its coarsest grid, its own KL weight."""

from __future__ import annotations

import csv

import torch

from gaussvae.baselines.pixel_job import pixel_job, pixel_training_params
from gaussvae.baselines.pixel_vae import PixelConfig, PixelVAE
from gaussvae.core.atomic import read_json
from gaussvae.core.distributed import Dist
from gaussvae.vae.model import ResBlock
from gaussvae.vae.trainer import TrainPaths, make_trainer
from tests.conftest import make_params


def _config(blocks: int) -> PixelConfig:
    return PixelConfig(32, 16, (8, 8), 4, 5, -10.0, 10.0, blocks)


def test_residual_blocks_sit_at_the_coarsest_grid_of_both_halves():
    plain, deep = PixelVAE(_config(0)), PixelVAE(_config(2))
    assert not any(isinstance(m, ResBlock) for m in plain.modules())
    for half in (deep.encoder, deep.decoder):
        blocks = [m for m in half if isinstance(m, ResBlock)]
        assert len(blocks) == 2
    probe = {}
    deep.encoder[next(i for i, m in enumerate(deep.encoder) if isinstance(m, ResBlock))] \
        .register_forward_hook(lambda m, i, o: probe.update(shape=o.shape))
    x = torch.randn(3, 32 * 32, 3)
    out, posterior = deep(x)
    assert probe["shape"] == (3, 8, 8, 8)  # 32 px halved twice, filters[-1] channels
    assert out.shape == x.shape and posterior.mu.shape == (3, 16)


def test_a_config_without_blocks_reads_as_the_plain_model():
    """Model files written before the key existed name no blocks; they load as plain."""
    d = _config(0).to_dict()
    del d["resnet_blocks"]
    assert PixelConfig.from_dict(d) == _config(0)


def test_the_baseline_trains_at_its_own_beta(tmp_path, tiny_images):
    params = make_params(**{"max_beta": 1.0, "pixel_baseline.max_beta": 0.25,
                            "pixel_baseline.resnet_blocks": 1, "train.epochs": 2,
                            "train.beta_warmup_epochs": 0})
    pixel = pixel_training_params(params)
    assert pixel.max_beta == 0.25 and params.max_beta == 1.0
    assert pixel.model_dump(exclude={"max_beta"}) == params.model_dump(exclude={"max_beta"})
    paths = TrainPaths(tmp_path / "m.safetensors", tmp_path / "c.pt", tmp_path / "tb",
                       tmp_path / "h.tsv", tmp_path / "train.json")
    make_trainer(pixel, pixel_job(pixel, tiny_images, torch.device("cpu")), Dist()).fit(paths)
    with open(paths.history) as f:
        betas = {float(row["beta"]) for row in csv.DictReader(f, delimiter="\t")}
    assert betas == {0.25}
    assert read_json(paths.metrics)["best_epoch_beta"] == 0.25
