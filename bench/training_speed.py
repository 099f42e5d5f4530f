"""Benchmark: training throughput, where a step's time goes, and a ratio against another setting.

Builds the train stage's own trainer (vae/trainer.py: make_trainer, the job's objective with
its render term, AdamW, the scaler) on data/gaussians.h5 (run `dvc repro symmetries` first) and
times its steps on the batches an epoch draws (batching and symmetries included):

- samples/s of whole steps, and the share of that time outside ``Trainer.step``;
- the step in parts, each timed alone on one batch: the model's forward and backward with the
  parameter loss and KL, the render term's forward and backward, the optimizer's update;
- with ``--vs KEY=VALUE ...`` (params overrides, as ``dvc exp run -S`` takes them), the same for
  a second trainer built with those overrides, run in turns with the first so that both see the
  same machine load, and the ratio of their samples/s;
- with ``--pixel``, the same for the pixel-space baseline's trainer (baselines/dvc.yaml:
  pixel_train, on data/images.h5): the Gaussian VAE and the baseline share train.epochs and
  train.batch_size, so the ratio of their samples/s is the ratio of their wall-clock minutes
  for the same steps.

Usage: python bench/training_speed.py [--steps 20] [--rounds 3] [--vs train.batch_size=64]
       [--pixel]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
import yaml

from gaussvae.baselines.pixel_job import pixel_job, pixel_training_params
from gaussvae.core.atomic import read_json
from gaussvae.core.device import resolve_device
from gaussvae.core.distributed import Dist
from gaussvae.core.params import Params, load_params, parse_params
from gaussvae.core.store import read_gaussians, read_images
from gaussvae.vae.job import gaussian_job
from gaussvae.vae.loss import beta_at, channel_mse, reconstruction
from gaussvae.vae.model import count_parameters
from gaussvae.vae.normalization import NormStats
from gaussvae.vae.trainer import Trainer, make_trainer


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def with_overrides(path: str, overrides: list[str]) -> Params:
    """params.yaml at ``path`` with dotted KEY=VALUE overrides (values parsed as YAML)."""
    with open(path) as f:
        raw = yaml.safe_load(f)
    for item in overrides:
        key, value = item.split("=", 1)
        *parents, last = key.split(".")
        node = raw
        for part in parents:
            node = node[part]
        if last not in node:
            raise SystemExit(f"--vs {item}: params.yaml has no key {key}")
        node[last] = yaml.safe_load(value)
    return parse_params(raw)


def build(params: Params, args: argparse.Namespace) -> Trainer:
    t = params.train
    device = resolve_device(t.device)
    data = read_gaussians(args.gaussians)
    stats = NormStats.from_json(read_json(args.stats))
    orders = np.load(args.symmetries) if t.symmetries > 1 else None
    images = read_images(args.images) if t.render_target == "image" else None
    return make_trainer(params, gaussian_job(params, data, stats, orders, images, device),
                        Dist(device=device))


def build_pixel(params: Params, args: argparse.Namespace) -> Trainer:
    params = pixel_training_params(params)
    device = resolve_device(params.train.device)
    return make_trainer(params, pixel_job(params, read_images(args.images), device),
                        Dist(device=device))


def describe(trainer: Trainer) -> str:
    t, train_set = trainer.params.train, trainer.job.train_set
    return (f"{type(trainer.model).__name__}, {count_parameters(trainer.model)} parameters, latent "
            f"{trainer.params.latent_dim}, batch {t.batch_size}, render term "
            f"{'on' if trainer.job.objective.render else 'off'}, {train_set.examples} examples x "
            f"{train_set.symmetries} symmetries, device {trainer.dist.device}, "
            f"{torch.get_num_threads()} threads")


def run_steps(trainer: Trainer, epoch: int, steps: int) -> tuple[int, float, float]:
    """(samples, seconds in Trainer.step, seconds in all) of the first ``steps`` steps of
    ``epoch``'s batches."""
    params, device = trainer.params, trainer.dist.device
    beta = beta_at(params.train.beta_warmup_epochs, params.max_beta,
                   params.train.beta_warmup_epochs)
    samples, compute = 0, 0.0
    t0 = time.perf_counter()
    for i, (x, target) in enumerate(trainer.batches(epoch)):
        if i == steps:
            break
        sync(device)
        c0 = time.perf_counter()
        trainer.step(x, target, beta)
        sync(device)
        compute += time.perf_counter() - c0
        samples += len(x)
    return samples, compute, time.perf_counter() - t0


def timed(f: Callable[[], None], device: torch.device, repeats: int = 5) -> float:
    """Milliseconds per call of ``f`` (after one warm-up call)."""
    f()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        f()
    sync(device)
    return (time.perf_counter() - t0) / repeats * 1000


def step_parts(trainer: Trainer) -> dict[str, float]:
    """Milliseconds of each part of one step on one batch, each part timed alone."""
    x, target = next(trainer.batches(0))
    model, objective, device = trainer.model, trainer.job.objective, trainer.dist.device

    def model_part() -> None:
        pred, post = model(x)
        recon = reconstruction(channel_mse(pred, x), objective.weighting, objective.types)
        (recon + post.kl().mean()).backward()

    parts = {"model forward + backward": timed(model_part, device)}
    if objective.render is not None:
        with torch.no_grad():
            pred = model(x)[0].detach()

        def render_part() -> None:
            p = pred.clone().requires_grad_(True)
            objective.render(p, target).backward()

        parts["render term forward + backward"] = timed(render_part, device)
    model_part()  # gradients for the update
    state = {k: v.clone() for k, v in model.state_dict().items()}
    opt_state = trainer.optimizer.state_dict()
    parts["optimizer update"] = timed(trainer.optimizer.step, device)
    model.load_state_dict(state)
    trainer.optimizer.load_state_dict(opt_state)
    parts["whole step"] = timed(lambda: trainer.step(x, target, 1.0), device)
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--gaussians", default="data/gaussians.h5")
    parser.add_argument("--stats", default="data/norm_stats.json")
    parser.add_argument("--images", default="data/images.h5")
    parser.add_argument("--symmetries", default="data/symmetries.npy")
    parser.add_argument("--steps", type=int, default=20, help="steps per round and trainer")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--vs", nargs="*", default=[], metavar="KEY=VALUE",
                        help="overrides for a second trainer to compare with")
    parser.add_argument("--pixel", action="store_true",
                        help="compare with the pixel-space baseline's trainer")
    args = parser.parse_args()
    trainers = {"params.yaml": build(load_params(args.params), args)}
    if args.vs:
        trainers[" ".join(args.vs)] = build(with_overrides(args.params, args.vs), args)
    if args.pixel:
        trainers["pixel baseline"] = build_pixel(load_params(args.params), args)
    for name, trainer in trainers.items():
        print(f"{name}: {describe(trainer)}")
        for part, ms in step_parts(trainer).items():
            print(f"  {part}: {ms:.1f} ms")
    totals = {name: np.zeros(3) for name in trainers}
    for r in range(args.rounds):  # in turns, so both see the same load
        for name, trainer in trainers.items():
            totals[name] += run_steps(trainer, r, args.steps)
    rates = {}
    for name, (samples, compute, total) in totals.items():
        rates[name] = samples / total
        print(f"{name}: {rates[name]:.0f} samples/s; step {compute:.2f}s of {total:.2f}s; "
              f"outside: {100 * (1 - compute / total):.1f}% of the time")
    first, *others = rates
    for name in others:
        print(f"ratio ({name}) / params.yaml: {rates[name] / rates[first]:.2f}x samples/s")


if __name__ == "__main__":
    main()
