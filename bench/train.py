"""Benchmark: training throughput and the share of step time spent outside forward/backward.

Trains the configured model for a few epochs on data/gaussians.h5 (run `dvc repro normalize`
first) with the same in-memory batching as the train stage, timing forward+backward+update
separately from the whole epoch. Usage: python bench/train.py [--epochs 3]
"""

from __future__ import annotations

import argparse
import time

import torch

from gaussvae.atomic import read_json
from gaussvae.device import resolve_device
from gaussvae.loss import vae_loss
from gaussvae.model import build_model, count_parameters
from gaussvae.normalize import NormStats, normalize
from gaussvae.params import load_params
from gaussvae.store import read_gaussians
from gaussvae.train import model_config


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
    x = normalize(torch.from_numpy(data.gaussians[data.select("train")]), stats).to(device)
    torch.manual_seed(0)
    model = build_model(model_config(params, x.shape[1])).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=t.learning_rate)
    print(f"{t.arch}, {count_parameters(model)} parameters, latent {params.latent_dim}, "
          f"{len(x)} samples, batch {t.batch_size}, device {device}, "
          f"{torch.get_num_threads()} threads")
    compute = total = 0.0
    samples = 0
    for _ in range(args.epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(len(x))
        for start in range(0, len(x), t.batch_size):
            batch = x[perm[start:start + t.batch_size].to(device)]
            if device.type == "cuda":
                torch.cuda.synchronize()
            c0 = time.perf_counter()
            pred, post = model(batch)
            loss, _, _ = vae_loss(pred, batch, post.kl(), params.max_beta, t.loss_weighting)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            compute += time.perf_counter() - c0
            samples += len(batch)
        total += time.perf_counter() - t0
    print(f"{samples / total:.0f} samples/s; forward/backward/update {compute:.2f}s of "
          f"{total:.2f}s; outside: {100 * (1 - compute / total):.1f}% of step time")


if __name__ == "__main__":
    main()
