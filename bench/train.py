"""Benchmark: training throughput and the share of step time spent outside the step.

Trains the configured model for a few epochs on data/gaussians.h5 (run `dvc repro normalize`
first) with the train stage's own objective (render term included) and ``train_step``, timing
the steps separately from the whole epoch (batching, logging).
Usage: python bench/train.py [--epochs 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from gaussvae.atomic import read_json
from gaussvae.device import resolve_device
from gaussvae.jobs import gaussian_job
from gaussvae.loss import beta_at
from gaussvae.model import count_parameters
from gaussvae.normalize import NormStats
from gaussvae.params import load_params
from gaussvae.store import read_gaussians, read_images
from gaussvae.train import epoch_order, train_step


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
    job = gaussian_job(params, data, stats, orders, images, device)
    objective, train_set = job.objective, job.train_set
    torch.manual_seed(0)
    model = job.build().to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=t.learning_rate,
                                  weight_decay=t.weight_decay)
    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    beta = beta_at(t.beta_warmup_epochs, params.max_beta, t.beta_warmup_epochs)
    print(f"{t.arch}, {count_parameters(model)} parameters, latent {params.latent_dim}, "
          f"{train_set.examples} examples x {train_set.count} symmetries, batch {t.batch_size}, "
          f"render term "
          f"{'on' if objective.render else 'off'}, device {device}, "
          f"{torch.get_num_threads()} threads")
    compute = total = 0.0
    samples = 0
    model.train()
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        perm = epoch_order(train_set.examples, t.seed, epoch, 0, 1, train_set.count)
        for start in range(0, len(perm), t.batch_size):
            batch, target = train_set.batch(perm[start:start + t.batch_size].to(device))
            if device.type == "cuda":
                torch.cuda.synchronize()
            c0 = time.perf_counter()
            train_step(model, optimizer, scaler, batch, target, objective, beta, amp)
            if device.type == "cuda":
                torch.cuda.synchronize()
            compute += time.perf_counter() - c0
            samples += len(batch)
        total += time.perf_counter() - t0
    print(f"{samples / total:.0f} samples/s; train_step {compute:.2f}s of {total:.2f}s; "
          f"outside: {100 * (1 - compute / total):.1f}% of epoch time")


if __name__ == "__main__":
    main()
