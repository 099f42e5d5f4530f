"""Benchmark: training throughput, and the share of an epoch spent outside the optimizer step.

Builds the train stage's own trainer (vae/trainer.py: make_trainer, the job's objective with
its render term, AdamW, the scaler) on data/gaussians.h5 (run `dvc repro symmetries` first) and
runs a few epochs of its batches, timing ``Trainer.step`` apart from the whole epoch (batching
and symmetries).
Usage: python bench/training_speed.py [--epochs 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from gaussvae.core.atomic import read_json
from gaussvae.core.device import resolve_device
from gaussvae.core.distributed import Dist
from gaussvae.core.params import load_params
from gaussvae.core.store import read_gaussians, read_images
from gaussvae.vae.job import gaussian_job
from gaussvae.vae.loss import beta_at
from gaussvae.vae.model import count_parameters
from gaussvae.vae.normalization import NormStats
from gaussvae.vae.trainer import make_trainer


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--gaussians", default="data/gaussians.h5")
    parser.add_argument("--stats", default="data/norm_stats.json")
    parser.add_argument("--images", default="data/images.h5")
    parser.add_argument("--symmetries", default="data/symmetries.npy")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    params = load_params(args.params)
    t = params.train
    device = resolve_device(t.device)
    data = read_gaussians(args.gaussians)
    stats = NormStats.from_json(read_json(args.stats))
    orders = np.load(args.symmetries) if t.symmetries > 1 else None
    images = read_images(args.images) if t.render_target == "image" else None
    trainer = make_trainer(params, gaussian_job(params, data, stats, orders, images, device),
                           Dist(device=device))
    train_set = trainer.job.train_set
    beta = beta_at(t.beta_warmup_epochs, params.max_beta, t.beta_warmup_epochs)
    print(f"{t.arch}, {count_parameters(trainer.model)} parameters, latent {params.latent_dim}, "
          f"{train_set.examples} examples x {train_set.symmetries} symmetries, batch "
          f"{t.batch_size}, render term {'on' if trainer.job.objective.render else 'off'}, "
          f"device {device}, {torch.get_num_threads()} threads")
    compute = total = 0.0
    samples = 0
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        for x, target in trainer.batches(epoch):
            sync(device)
            c0 = time.perf_counter()
            trainer.step(x, target, beta)
            sync(device)
            compute += time.perf_counter() - c0
            samples += len(x)
        total += time.perf_counter() - t0
    print(f"{samples / total:.0f} samples/s; step {compute:.2f}s of {total:.2f}s; "
          f"outside: {100 * (1 - compute / total):.1f}% of epoch time")


if __name__ == "__main__":
    main()
