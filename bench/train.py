"""Benchmark: training throughput and the share of step time spent outside the step.

Trains the configured model for a few epochs on data/gaussians.h5 (run `dvc repro normalize`
first) with the train stage's own objective (render term included) and ``train_step``, timing
the steps separately from the whole epoch (batching, logging).
Usage: python bench/train.py [--epochs 3]
"""

from __future__ import annotations

import argparse
import time

import torch

from gaussvae.atomic import read_json
from gaussvae.device import resolve_device
from gaussvae.loss import beta_at
from gaussvae.model import VAEConfig, build_model, count_parameters
from gaussvae.normalize import NormStats, normalize
from gaussvae.params import load_params
from gaussvae.store import read_gaussians
from gaussvae.train import make_objective, train_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--gaussians", default="data/gaussians.h5")
    parser.add_argument("--stats", default="data/norm_stats.json")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    params = load_params(args.params)
    t = params.train
    device = resolve_device(t.device)
    data = read_gaussians(args.gaussians)
    stats = NormStats.from_json(read_json(args.stats))
    fitted = torch.from_numpy(data.gaussians[data.select("train")]).to(device)
    x = normalize(fitted, stats)
    torch.manual_seed(0)
    model = build_model(VAEConfig.from_params(params, x.shape[1])).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=t.learning_rate)
    objective = make_objective(params, data, stats)
    pixels = None if objective.render is None else objective.render.targets(fitted)
    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    beta = beta_at(t.beta_warmup_epochs, params.max_beta, t.beta_warmup_epochs)
    print(f"{t.arch}, {count_parameters(model)} parameters, latent {params.latent_dim}, "
          f"{len(x)} samples, batch {t.batch_size}, render term "
          f"{'on' if objective.render else 'off'}, device {device}, "
          f"{torch.get_num_threads()} threads")
    compute = total = 0.0
    samples = 0
    model.train()
    for _ in range(args.epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(len(x))
        for start in range(0, len(x), t.batch_size):
            idx = perm[start:start + t.batch_size].to(device)
            batch, target = x[idx], None if pixels is None else pixels[idx]
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
